// SPDX-License-Identifier: GPL-2.0
/*
 * Test scaffolding: makes the kernel's own key requests on demand, exactly as
 * the kernel's callers make them, so that the guest tests can drive them.
 *
 * In /sys/kernel/debug/keyagent_test_caller/, each file takes one write, the
 * name to look up, and gives the answer on the next read of the same open
 * file; the write fails with the request's errno:
 *
 *	dns_query		dns_query() of the name in the writer's network
 *				namespace, in the writer's context (as NFS and
 *				CIFS resolve server names at mount time)
 *	dns_query_kthread	the same from a kernel thread, with the writer's
 *				network namespace named explicitly (as cifsd
 *				reconnecting does)
 *	request			request_key() of a "keyagent_test" key (a type
 *				with a global cache, like id_resolver) under
 *				override credentials with a thread keyring of
 *				this module's, like the NFS idmapper, in the
 *				writer's context
 *	request_kthread		the same from a kernel thread
 */
#include <linux/completion.h>
#include <linux/cred.h>
#include <linux/debugfs.h>
#include <linux/dns_resolver.h>
#include <linux/fs.h>
#include <linux/key-type.h>
#include <linux/keyctl.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/nsproxy.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <keys/user-type.h>
#include <net/net_namespace.h>

#define NAME_MAX_LEN 255

static struct key_type key_type_test = {
	.name		= "keyagent_test",
	.preparse	= user_preparse,
	.free_preparse	= user_free_preparse,
	.instantiate	= generic_key_instantiate,
	.revoke		= user_revoke,
	.destroy	= user_destroy,
	.describe	= user_describe,
	.read		= user_read,
};

static const struct cred *test_cred;
static struct dentry *dir;

enum caller { DNS, DNS_KTHREAD, REQUEST, REQUEST_KTHREAD };

struct query {
	enum caller caller;
	struct net *net;
	char name[NAME_MAX_LEN + 1];
	char *result;
	int ret;
	struct completion done;
};

static int request_test_key(const char *name, char **result)
{
	const struct cred *saved = override_creds(test_cred);
	struct key *key = request_key(&key_type_test, name, "");
	const struct user_key_payload *payload;
	int ret;

	revert_creds(saved);
	if (IS_ERR(key))
		return PTR_ERR(key);
	down_read(&key->sem);
	ret = key_validate(key);
	payload = user_key_payload_locked(key);
	if (!ret && payload) {
		*result = kmemdup_nul(payload->data, payload->datalen, GFP_KERNEL);
		ret = *result ? payload->datalen : -ENOMEM;
	} else if (!ret) {
		ret = -ENOKEY;
	}
	up_read(&key->sem);
	key_put(key);
	return ret;
}

static void run_query(struct query *q)
{
	if (q->caller == DNS || q->caller == DNS_KTHREAD)
		q->ret = dns_query(q->net, NULL, q->name, strlen(q->name), NULL,
				   &q->result, NULL, false);
	else
		q->ret = request_test_key(q->name, &q->result);
}

static int query_thread(void *data)
{
	struct query *q = data;

	run_query(q);
	complete(&q->done);
	return 0;
}

static int caller_open(struct inode *inode, struct file *file)
{
	struct query *q = kzalloc(sizeof(*q), GFP_KERNEL);

	if (!q)
		return -ENOMEM;
	q->caller = (enum caller)(uintptr_t)inode->i_private;
	init_completion(&q->done);
	file->private_data = q;
	return 0;
}

static ssize_t caller_write(struct file *file, const char __user *buf,
			    size_t len, loff_t *ppos)
{
	struct query *q = file->private_data;
	struct task_struct *thread;

	if (len == 0 || len > NAME_MAX_LEN || q->result)
		return -EINVAL;
	if (copy_from_user(q->name, buf, len))
		return -EFAULT;
	q->name[len] = 0;
	strim(q->name);
	q->net = get_net(current->nsproxy->net_ns);
	if (q->caller == DNS_KTHREAD || q->caller == REQUEST_KTHREAD) {
		thread = kthread_run(query_thread, q, "keyagent-test");
		if (IS_ERR(thread)) {
			q->ret = PTR_ERR(thread);
		} else {
			wait_for_completion(&q->done);
		}
	} else {
		run_query(q);
	}
	put_net(q->net);
	q->net = NULL;
	return q->ret < 0 ? q->ret : len;
}

static ssize_t caller_read(struct file *file, char __user *buf, size_t len,
			   loff_t *ppos)
{
	struct query *q = file->private_data;

	if (!q->result)
		return -ENODATA;
	return simple_read_from_buffer(buf, len, ppos, q->result, strlen(q->result));
}

static int caller_release(struct inode *inode, struct file *file)
{
	struct query *q = file->private_data;

	kfree(q->result);
	kfree(q);
	return 0;
}

static const struct file_operations caller_fops = {
	.owner		= THIS_MODULE,
	.open		= caller_open,
	.write		= caller_write,
	.read		= caller_read,
	.release	= caller_release,
};

static int __init caller_init(void)
{
	struct cred *cred;
	struct key *keyring;
	int ret;

	cred = prepare_kernel_cred(&init_task);
	if (!cred)
		return -ENOMEM;
	keyring = keyring_alloc(".keyagent_test", GLOBAL_ROOT_UID, GLOBAL_ROOT_GID, cred,
				(KEY_POS_ALL & ~KEY_POS_SETATTR) | KEY_USR_VIEW | KEY_USR_READ,
				KEY_ALLOC_NOT_IN_QUOTA, NULL, NULL);
	if (IS_ERR(keyring)) {
		ret = PTR_ERR(keyring);
		goto put_cred;
	}
	ret = register_key_type(&key_type_test);
	if (ret < 0)
		goto put_keyring;
	set_bit(KEY_FLAG_ROOT_CAN_CLEAR, &keyring->flags);
	cred->thread_keyring = keyring;
	cred->jit_keyring = KEY_REQKEY_DEFL_THREAD_KEYRING;
	test_cred = cred;

	dir = debugfs_create_dir("keyagent_test_caller", NULL);
	debugfs_create_file("dns_query", 0666, dir, (void *)DNS, &caller_fops);
	debugfs_create_file("dns_query_kthread", 0666, dir, (void *)DNS_KTHREAD, &caller_fops);
	debugfs_create_file("request", 0666, dir, (void *)REQUEST, &caller_fops);
	debugfs_create_file("request_kthread", 0666, dir, (void *)REQUEST_KTHREAD, &caller_fops);
	return 0;

put_keyring:
	key_put(keyring);
put_cred:
	put_cred(cred);
	return ret;
}

static void __exit caller_exit(void)
{
	debugfs_remove(dir);
	key_revoke(test_cred->thread_keyring);
	unregister_key_type(&key_type_test);
	put_cred(test_cred);
}

module_init(caller_init);
module_exit(caller_exit);
MODULE_DESCRIPTION("keyagent test scaffolding: the kernel's own key requests on demand");
MODULE_LICENSE("GPL");
