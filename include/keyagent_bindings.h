/* SPDX-License-Identifier: GPL-2.0 */
/* Input of the module's own bindgen run (see Kbuild). */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/debugfs.h>
#include <linux/ftrace.h>
#include <linux/key.h>
#include <linux/key-type.h>
#include <linux/keyctl.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/user_namespace.h>
#include <linux/workqueue.h>
#include <keys/request_key_auth-type.h>

#include <linux/errno.h>
#include <linux/signal.h>

#include "keyagent.h"
#include "keyagent_helpers.h"
