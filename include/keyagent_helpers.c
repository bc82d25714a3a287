// SPDX-License-Identifier: GPL-2.0
/*
 * C wrappers for static inlines and macros, and the module parameters.
 */
#include <linux/cred.h>
#include <linux/ftrace.h>
#include <linux/jiffies.h>
#include <linux/key.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/signal.h>
#include <linux/workqueue.h>

#include "keyagent_helpers.h"

static unsigned int request_timeout = 30;
module_param(request_timeout, uint, 0644);
MODULE_PARM_DESC(request_timeout,
		 "Seconds an agent has to answer before the construction fails with ETIMEDOUT (default 30, minimum 1)");

static unsigned int max_pending = 128;
module_param(max_pending, uint, 0644);
MODULE_PARM_DESC(max_pending,
		 "Constructions one agent may have in flight; more fail at once with EBUSY (default 128)");

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

short keyagent_key_read_state(const struct key *key)
{
	return key_read_state(key);
}

const struct cred *keyagent_current_cred(void)
{
	return current_cred();
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
