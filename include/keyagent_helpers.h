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
struct ftrace_regs;
struct kernel_siginfo;
struct key;
struct pid;
struct seq_file;
struct task_struct;
struct work_struct;

/* Keys. */
struct key *keyagent_key_get(struct key *key);
short keyagent_key_read_state(const struct key *key);

/* Credentials and tasks. */
const struct cred *keyagent_current_cred(void);
struct pid *keyagent_get_current_pid(void);
pid_t keyagent_pid_seen_by(struct task_struct *task, struct pid *pid);
uid_t keyagent_uid_for_siginfo(kuid_t uid);
struct key *keyagent_pid_process_keyring(struct pid *pid);
void keyagent_put_task(struct task_struct *task);
void keyagent_fill_rt_siginfo(struct kernel_siginfo *info, int sig, int code,
			      pid_t pid, uid_t uid, int value);

/* The actor hook: called from the ftrace callback, so never traced. */
unsigned long keyagent_ftrace_arg(struct ftrace_regs *fregs, unsigned int n);
void keyagent_ftrace_set_ip(struct ftrace_regs *fregs, unsigned long ip);
unsigned long keyagent_ftrace_ops_flags(void);
bool keyagent_try_module_get(void);
void keyagent_module_put(void);

/* Deferred work and time. */
void keyagent_init_delayed_work(struct delayed_work *dwork,
				void (*func)(struct work_struct *work));
bool keyagent_schedule_delayed_work(struct delayed_work *dwork,
				    unsigned long delay);
u64 keyagent_jiffies(void);
unsigned long keyagent_msecs_to_jiffies(unsigned int ms);

/* Module parameters, read at the time of use. */
unsigned int keyagent_param_request_timeout(void);
unsigned int keyagent_param_max_pending(void);

#endif /* _KEYAGENT_HELPERS_H */
