/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * keyagent: the userspace side of the keyagent module's ABI.
 *
 * An agent registers for a key type by adding a "keyagent" key whose
 * description is that type and whose payload is a realtime signal number:
 *
 *	add_key("keyagent", "user", "40", 2, KEY_SPEC_SESSION_KEYRING);
 *
 * When a requester whose session keyring holds that key (directly or through
 * nested keyrings it may search) calls request_key() for a "user" key that does
 * not exist, the module links the authorisation key into the agent's process
 * keyring and queues the signal on the agent's registering thread with:
 *
 *	si_code  KEYAGENT_SI_CODE
 *	si_int   serial of the key under construction
 *	si_pid   the requesting thread, as seen in the agent's pid namespace
 *		 (0 if it is not visible there)
 *	si_uid   the requester's fsuid, as seen in the agent's user namespace
 *		 (the overflow uid if it is not mapped there)
 *
 * The agent answers with keyctl: assume_authority(si_int), then instantiate,
 * reject or negate; the module unlinks the authorisation key when the
 * construction ends.
 */
#ifndef _KEYAGENT_H
#define _KEYAGENT_H

/* The key type agents register with. */
#define KEYAGENT_KEY_TYPE "keyagent"

/* si_code of the signals the module sends; negative, so signalfd carries si_int. */
#define KEYAGENT_SI_CODE (-0x4b41)

/* Longest key type name an agent may register for. */
#define KEYAGENT_TYPE_NAME_MAX 31

/*
 * How a construction handed to an agent fails when the agent does not answer
 * (the requester's request_key() returns -errno):
 *
 *	EOWNERDEAD	the agent died before answering
 *	ETIMEDOUT	no answer within the module's request_timeout
 *	EAGAIN		the signal could not be queued (agent's RLIMIT_SIGPENDING)
 *	EBUSY		the agent already has max_pending constructions in flight
 *	ECANCELED	the module was unloaded while the construction was pending
 *	ENOKEY		the agent's key went away between routing and dispatch
 */

#endif /* _KEYAGENT_H */
