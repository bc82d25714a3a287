/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C wrappers for the static inlines and macros the Rust side needs, plus the
 * module parameters (6.12's module! macro has none). Nothing here decides
 * anything; the module's logic lives in rust/.
 */
#ifndef _KEYAGENT_HELPERS_H
#define _KEYAGENT_HELPERS_H

#include <linux/types.h>
#include <linux/uidgid.h>

struct cred;
struct delayed_work;
struct file;
struct poll_table_struct;
struct wait_queue_head;
struct ftrace_regs;
struct kernel_siginfo;
struct key;
struct key_tag;
struct net;
struct pid;
struct seq_file;
struct task_struct;
struct user_namespace;
struct work_struct;

/* Keys. */
struct key *keyagent_key_get(struct key *key);
bool keyagent_key_tryget(struct key *key);
short keyagent_key_read_state(const struct key *key);
bool keyagent_key_is_dead(const struct key *key);

/* RCU. */
void keyagent_rcu_read_lock(void);
void keyagent_rcu_read_unlock(void);

/* Credentials and tasks. */
const struct cred *keyagent_current_cred(void);
const struct cred *keyagent_get_current_cred(void);
void keyagent_put_cred(const struct cred *cred);
bool keyagent_current_has_override_cred(void);
bool keyagent_current_is_kthread(void);
bool keyagent_current_is_dumpable(void);
bool keyagent_current_pid_is(struct pid *pid);
struct pid *keyagent_get_current_pid(void);
pid_t keyagent_pid_seen_by(struct task_struct *task, struct pid *pid);
uid_t keyagent_uid_for_siginfo(kuid_t uid);
struct key *keyagent_pid_process_keyring(struct pid *pid);
void keyagent_put_task(struct task_struct *task);
void keyagent_fill_rt_siginfo(struct kernel_siginfo *info, int sig, int code,
			      pid_t pid, uid_t uid, int value);

/* User namespaces. */
struct user_namespace *keyagent_user_ns_parent(const struct user_namespace *ns);
kuid_t keyagent_user_ns_owner(const struct user_namespace *ns);
kuid_t keyagent_user_ns_root(const struct user_namespace *ns);

/* Network namespaces and their key domains. */
struct net *keyagent_get_current_net(void);
void keyagent_put_net(struct net *net);
const struct key_tag *keyagent_net_key_domain(const struct net *net);
unsigned int keyagent_net_inum(const struct net *net);
struct user_namespace *keyagent_net_user_ns(const struct net *net);
const struct key_tag *keyagent_current_net_key_domain(void);

/* The actor hook: called from the ftrace callback, so never traced. */
unsigned long keyagent_ftrace_arg(struct ftrace_regs *fregs, unsigned int n);
void keyagent_ftrace_set_arg1(struct ftrace_regs *fregs, unsigned long value);
void keyagent_ftrace_set_ip(struct ftrace_regs *fregs, unsigned long ip);
unsigned long keyagent_ftrace_ops_flags(void);
bool keyagent_try_module_get(void);
void keyagent_module_put(void);
void keyagent_synchronize_rcu_tasks(void);
bool keyagent_search_crosses_domain(const struct key *key, const void *match_data);
struct key_match_data;
bool keyagent_no_match(const struct key *key, const struct key_match_data *match_data);

/* Deferred work and time. */
void keyagent_init_delayed_work(struct delayed_work *dwork,
				void (*func)(struct work_struct *work));
bool keyagent_schedule_delayed_work(struct delayed_work *dwork,
				    unsigned long delay);
u64 keyagent_jiffies(void);
unsigned long keyagent_msecs_to_jiffies(unsigned int ms);

/* Pids and ids, as the current task sees them. */
struct pid *keyagent_get_pid(struct pid *pid);
uid_t keyagent_uid_seen_by_current(kuid_t uid);
gid_t keyagent_gid_seen_by_current(kgid_t gid);

/*
 * The channel device, /dev/keyagent. Its file operations are the module's
 * Rust functions keyagent_channel_*, declared here and defined in rust/.
 */
int keyagent_channel_open(struct file *file);
void keyagent_channel_release(struct file *file);
ssize_t keyagent_channel_read(struct file *file, char __user *buf, size_t count);
ssize_t keyagent_channel_write(struct file *file, const char __user *buf, size_t count);
unsigned int keyagent_channel_poll(struct file *file, struct poll_table_struct *table);
int keyagent_channel_device_register(void);
void keyagent_channel_device_deregister(void);
struct file *keyagent_fget_channel(int fd);
void keyagent_fput(struct file *file);
void *keyagent_file_private(const struct file *file);
void keyagent_file_set_private(struct file *file, void *data);
bool keyagent_file_nonblock(const struct file *file);

/* Wait queues. */
void keyagent_init_waitqueue(struct wait_queue_head *wq);
void keyagent_wake_up_readers(struct wait_queue_head *wq);
int keyagent_wait_event(struct wait_queue_head *wq, bool (*ready)(const void *data),
			const void *data);
void keyagent_poll_wait(struct file *file, struct wait_queue_head *wq,
			struct poll_table_struct *table);
unsigned int keyagent_poll_readable(void);
unsigned int keyagent_poll_writable(void);

/* Module parameters, read at the time of use. */
unsigned int keyagent_param_request_timeout(void);
unsigned int keyagent_param_max_pending(void);
size_t keyagent_param_global_types(char *buf, size_t size);

#endif /* _KEYAGENT_HELPERS_H */
