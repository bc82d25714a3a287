// SPDX-License-Identifier: GPL-2.0
/*
 * C wrappers for static inlines and macros, and the module parameters.
 */
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/poll.h>
#include <linux/ctype.h>
#include <linux/ftrace.h>
#include <linux/jiffies.h>
#include <linux/key.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/nsproxy.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/coredump.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/signal.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/user_namespace.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <net/net_namespace.h>

/* struct keyring_search_context, to read the domain a search is made in. */
#include <../security/keys/internal.h>

#include "keyagent_helpers.h"

static unsigned int request_timeout = 30;
module_param(request_timeout, uint, 0644);
MODULE_PARM_DESC(request_timeout,
		 "Seconds an agent has to answer before the construction fails with ETIMEDOUT (default 30, minimum 1)");

static unsigned int max_pending = 128;
module_param(max_pending, uint, 0644);
MODULE_PARM_DESC(max_pending,
		 "Constructions one agent may have in flight; more fail at once with EBUSY (default 128)");

/*
 * global_types: the key types with a global cache (no network namespace tag)
 * that scoped agents may serve, comma separated. Kept in a buffer of our own
 * so that the routing code can copy it without sleeping.
 */
#define GLOBAL_TYPES_MAX 256
static char global_types[GLOBAL_TYPES_MAX];
static DEFINE_SPINLOCK(global_types_lock);

static int global_types_set(const char *val, const struct kernel_param *kp)
{
	size_t len = strcspn(val, "\n"), i;

	if (len >= GLOBAL_TYPES_MAX || (val[len] && strcmp(val + len, "\n")))
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!isgraph(val[i]))
			return -EINVAL;
	spin_lock(&global_types_lock);
	memcpy(global_types, val, len);
	global_types[len] = 0;
	spin_unlock(&global_types_lock);
	return 0;
}

static int global_types_get(char *buffer, const struct kernel_param *kp)
{
	int n;

	spin_lock(&global_types_lock);
	n = scnprintf(buffer, PAGE_SIZE, "%s\n", global_types);
	spin_unlock(&global_types_lock);
	return n;
}

static const struct kernel_param_ops global_types_ops = {
	.set = global_types_set,
	.get = global_types_get,
};
module_param_cb(global_types, &global_types_ops, NULL, 0644);
MODULE_PARM_DESC(global_types,
		 "Key types with a global cache (no network namespace tag) that agents scoped to a network namespace may serve, comma separated; only CAP_SYS_ADMIN in the initial user namespace may register such agents (default: none)");

/* Copies global_types into @buf (NUL-terminated) and returns its length. */
size_t keyagent_param_global_types(char *buf, size_t size)
{
	ssize_t len;

	spin_lock(&global_types_lock);
	len = strscpy(buf, global_types, size);
	spin_unlock(&global_types_lock);
	return len < 0 ? 0 : len;
}

/* dns_resolver first: its lookups are hooked at load time (see rust/sys/ftrace.rs). */
MODULE_SOFTDEP("pre: dns_resolver");

unsigned int keyagent_param_request_timeout(void)
{
	return max(READ_ONCE(request_timeout), 1U);
}

unsigned int keyagent_param_max_pending(void)
{
	return READ_ONCE(max_pending);
}

struct key *keyagent_key_get(struct key *key)
{
	return key_get(key);
}

/* A new reference on @key unless its count already dropped to zero. */
bool keyagent_key_tryget(struct key *key)
{
	return refcount_inc_not_zero(&key->usage);
}

short keyagent_key_read_state(const struct key *key)
{
	return key_read_state(key);
}

bool keyagent_key_is_dead(const struct key *key)
{
	return test_bit(KEY_FLAG_DEAD, &key->flags);
}

void keyagent_rcu_read_lock(void)
{
	rcu_read_lock();
}

void keyagent_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

const struct cred *keyagent_current_cred(void)
{
	return current_cred();
}

const struct cred *keyagent_get_current_cred(void)
{
	return get_current_cred();
}

void keyagent_put_cred(const struct cred *cred)
{
	put_cred(cred);
}

/* Whether current acts under credentials other than its own (override_creds()). */
bool keyagent_current_has_override_cred(void)
{
	return current->cred != current->real_cred;
}

bool keyagent_current_is_kthread(void)
{
	return current->flags & PF_KTHREAD;
}

/* Whether current may be dumped by its own user: it gained no privilege by exec. */
bool keyagent_current_is_dumpable(void)
{
	return current->mm && get_dumpable(current->mm) == SUID_DUMP_USER;
}

bool keyagent_current_pid_is(struct pid *pid)
{
	return task_pid(current) == pid;
}

struct user_namespace *keyagent_user_ns_parent(const struct user_namespace *ns)
{
	return ns->parent;
}

kuid_t keyagent_user_ns_owner(const struct user_namespace *ns)
{
	return ns->owner;
}

/* The uid that is 0 in @ns (INVALID_UID if none is mapped). */
kuid_t keyagent_user_ns_root(const struct user_namespace *ns)
{
	return make_kuid((struct user_namespace *)ns, 0);
}

/* A reference on current's network namespace, NULL if it has none (exiting). */
struct net *keyagent_get_current_net(void)
{
	struct nsproxy *nsproxy = current->nsproxy;

	return nsproxy ? get_net(nsproxy->net_ns) : NULL;
}

void keyagent_put_net(struct net *net)
{
	put_net(net);
}

const struct key_tag *keyagent_net_key_domain(const struct net *net)
{
	return net->key_domain;
}

unsigned int keyagent_net_inum(const struct net *net)
{
	return net->ns.inum;
}

struct user_namespace *keyagent_net_user_ns(const struct net *net)
{
	return net->user_ns;
}

/* The key domain of current's network namespace, NULL if it has none. */
const struct key_tag *keyagent_current_net_key_domain(void)
{
	struct nsproxy *nsproxy = current->nsproxy;

	return nsproxy ? nsproxy->net_ns->key_domain : NULL;
}

struct pid *keyagent_get_current_pid(void)
{
	return get_pid(task_pid(current));
}

/* @pid's number in @task's pid namespace, 0 if it has none there. */
pid_t keyagent_pid_seen_by(struct task_struct *task, struct pid *pid)
{
	struct pid_namespace *ns;
	pid_t nr = 0;

	rcu_read_lock();
	ns = task_active_pid_ns(task);
	if (ns)
		nr = pid_nr_ns(pid, ns);
	rcu_read_unlock();
	return nr;
}

/*
 * @uid as a signal sent by the current task carries it: in the current user
 * namespace. send_signal_locked() translates it into the target's.
 */
uid_t keyagent_uid_for_siginfo(kuid_t uid)
{
	return from_kuid_munged(current_user_ns(), uid);
}

/*
 * A new reference to the process keyring of the thread @pid names, or NULL if
 * the thread is gone, exiting, or has no process keyring. Does not sleep.
 */
struct key *keyagent_pid_process_keyring(struct pid *pid)
{
	struct task_struct *task;
	struct key *keyring = NULL;

	rcu_read_lock();
	task = pid_task(pid, PIDTYPE_PID);
	if (task && !(READ_ONCE(task->flags) & PF_EXITING))
		keyring = key_get(__task_cred(task)->process_keyring);
	rcu_read_unlock();
	return keyring;
}

void keyagent_put_task(struct task_struct *task)
{
	put_task_struct(task);
}

void keyagent_fill_rt_siginfo(struct kernel_siginfo *info, int sig, int code,
			      pid_t pid, uid_t uid, int value)
{
	clear_siginfo(info);
	info->si_signo = sig;
	info->si_errno = 0;
	info->si_code = code;
	info->si_pid = pid;
	info->si_uid = uid;
	info->si_int = value;
}

notrace unsigned long keyagent_ftrace_arg(struct ftrace_regs *fregs,
					  unsigned int n)
{
	return ftrace_regs_get_argument(fregs, n);
}

#ifndef arch_ftrace_regs
#define arch_ftrace_regs(fregs) (fregs)
#endif

/* Sets the second argument of the function being entered. */
notrace void keyagent_ftrace_set_arg1(struct ftrace_regs *fregs, unsigned long value)
{
#if defined(CONFIG_X86_64)
	arch_ftrace_regs(fregs)->regs.si = value;
#elif defined(CONFIG_ARM64)
	arch_ftrace_regs(fregs)->regs[1] = value;
#else
#error "keyagent: setting an argument from ftrace is only implemented for x86_64 and arm64"
#endif
}

notrace void keyagent_ftrace_set_ip(struct ftrace_regs *fregs, unsigned long ip)
{
	ftrace_regs_set_instruction_pointer(fregs, ip);
}

/* An ops that may redirect the traced function; SAVE_ARGS is 0 with ftrace_regs args. */
unsigned long keyagent_ftrace_ops_flags(void)
{
	return FTRACE_OPS_FL_IPMODIFY | FTRACE_OPS_FL_SAVE_ARGS;
}

notrace bool keyagent_try_module_get(void)
{
	return try_module_get(THIS_MODULE);
}

void keyagent_module_put(void)
{
	module_put(THIS_MODULE);
}

/*
 * Whether the key a keyring search compares with its match data (a
 * key_match_data inside a keyring_search_context: every caller of a key type's
 * cmp passes one) belongs to another key domain than the search. Lookups that
 * iterate (such as dns_resolver's case-insensitive ones) do not check the
 * domain themselves.
 */
notrace bool keyagent_search_crosses_domain(const struct key *key, const void *match_data)
{
	const struct keyring_search_context *ctx =
		container_of(match_data, struct keyring_search_context, match_data);

	return key->index_key.domain_tag != ctx->index_key.domain_tag;
}

/* Stands in for a key type's cmp: no match. */
notrace bool keyagent_no_match(const struct key *key, const struct key_match_data *match_data)
{
	return false;
}

/*
 * Waits until every task has passed a voluntary context switch or user space
 * (RCU tasks); without CONFIG_TASKS_RCU (no preemption) this is
 * synchronize_rcu(), which a task cannot pass inside a few instructions that
 * have no preemption point.
 */
void keyagent_synchronize_rcu_tasks(void)
{
	synchronize_rcu_tasks();
}

void keyagent_init_delayed_work(struct delayed_work *dwork,
				void (*func)(struct work_struct *work))
{
	INIT_DELAYED_WORK(dwork, func);
}

bool keyagent_schedule_delayed_work(struct delayed_work *dwork,
				    unsigned long delay)
{
	return schedule_delayed_work(dwork, delay);
}

u64 keyagent_jiffies(void)
{
	return get_jiffies_64();
}

unsigned long keyagent_msecs_to_jiffies(unsigned int ms)
{
	return msecs_to_jiffies(ms);
}

struct pid *keyagent_get_pid(struct pid *pid)
{
	return get_pid(pid);
}

uid_t keyagent_uid_seen_by_current(kuid_t uid)
{
	return from_kuid_munged(current_user_ns(), uid);
}

gid_t keyagent_gid_seen_by_current(kgid_t gid)
{
	return from_kgid_munged(current_user_ns(), gid);
}

static int channel_open(struct inode *inode, struct file *file)
{
	int ret = stream_open(inode, file);

	return ret ? ret : keyagent_channel_open(file);
}

static int channel_release(struct inode *inode, struct file *file)
{
	keyagent_channel_release(file);
	return 0;
}

static ssize_t channel_read(struct file *file, char __user *buf, size_t count,
			    loff_t *pos)
{
	return keyagent_channel_read(file, buf, count);
}

static ssize_t channel_write(struct file *file, const char __user *buf,
			     size_t count, loff_t *pos)
{
	return keyagent_channel_write(file, buf, count);
}

static __poll_t channel_poll(struct file *file, struct poll_table_struct *table)
{
	return (__force __poll_t)keyagent_channel_poll(file, table);
}

/* Open files hold the module (owner): it cannot be unloaded under them. */
static const struct file_operations channel_fops = {
	.owner = THIS_MODULE,
	.open = channel_open,
	.release = channel_release,
	.read = channel_read,
	.write = channel_write,
	.poll = channel_poll,
};

static struct miscdevice channel_device = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "keyagent",
	.fops = &channel_fops,
	/* Opening grants nothing: registering and routing make the checks. */
	.mode = 0666,
};

int keyagent_channel_device_register(void)
{
	return misc_register(&channel_device);
}

void keyagent_channel_device_deregister(void)
{
	misc_deregister(&channel_device);
}

/* The open file of descriptor fd of the current task, if it is a channel. */
struct file *keyagent_fget_channel(int fd)
{
	struct file *file = fget(fd);

	if (!file)
		return ERR_PTR(-EBADF);
	if (file->f_op != &channel_fops) {
		fput(file);
		return ERR_PTR(-EINVAL);
	}
	return file;
}

void keyagent_fput(struct file *file)
{
	fput(file);
}

void *keyagent_file_private(const struct file *file)
{
	return file->private_data;
}

void keyagent_file_set_private(struct file *file, void *data)
{
	file->private_data = data;
}

bool keyagent_file_nonblock(const struct file *file)
{
	return file->f_flags & O_NONBLOCK;
}

void keyagent_init_waitqueue(struct wait_queue_head *wq)
{
	init_waitqueue_head(wq);
}

void keyagent_wake_up_readers(struct wait_queue_head *wq)
{
	wake_up_interruptible_poll(wq, EPOLLIN | EPOLLRDNORM);
}

/* ready() runs with the task state set: it must not sleep. */
int keyagent_wait_event(struct wait_queue_head *wq, bool (*ready)(const void *data),
			const void *data)
{
	return wait_event_interruptible(*wq, ready(data));
}

void keyagent_poll_wait(struct file *file, struct wait_queue_head *wq,
			struct poll_table_struct *table)
{
	poll_wait(file, wq, table);
}

unsigned int keyagent_poll_readable(void)
{
	return (__force unsigned int)(EPOLLIN | EPOLLRDNORM);
}

unsigned int keyagent_poll_writable(void)
{
	return (__force unsigned int)(EPOLLOUT | EPOLLWRNORM);
}
