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

#include <linux/types.h>

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

/*
 * The channel: /dev/keyagent, an agent without signals.
 *
 * open() makes a channel. Registering it for a key type works as for a signal
 * agent, with the payload "fd N" (N: the caller's descriptor of the channel),
 * optionally followed by " net" as for a signal agent:
 *
 *	fd = open("/dev/keyagent", O_RDWR | O_CLOEXEC);
 *	snprintf(payload, sizeof(payload), "fd %d", fd);
 *	add_key("keyagent", "user", payload, strlen(payload), KEY_SPEC_SESSION_KEYRING);
 *
 * One channel may serve several types and keyrings. A construction routed to
 * it is queued until read(), which returns whole struct keyagent_request
 * records, as many as fit (blocking until there is one, unless O_NONBLOCK:
 * EAGAIN); a buffer too small for the first record gets EINVAL and loses
 * nothing. write() takes whole struct keyagent_answer records; the module
 * answers with the authority it holds, so the agent never assumes it. poll()
 * reports EPOLLIN while records wait; writes never block.
 *
 * The channel is the open file: after fork() or SCM_RIGHTS every holder reads
 * from the same queue (a record goes to one reader) and may answer what any
 * holder read. When the last reference is closed the agent is dead: its
 * constructions, read or not, fail at once with EOWNERDEAD.
 */
#define KEYAGENT_DEVICE "/dev/keyagent"
#define KEYAGENT_ABI_VERSION 1

/* Every record's size is a multiple of this. */
#define KEYAGENT_RECORD_ALIGN 8
/* No record read is longer: a buffer this long always holds the next one. */
#define KEYAGENT_REQUEST_MAX 16384
/* Longest payload of one answer (as keyctl_instantiate()). */
#define KEYAGENT_PAYLOAD_MAX (1024 * 1024 - 1)
/* Longest write(). */
#define KEYAGENT_WRITE_MAX (2 * 1024 * 1024)

/* A construction, as read(). */
struct keyagent_request {
	__u32 size;		/* bytes of the record, a multiple of 8 */
	__u16 version;		/* KEYAGENT_ABI_VERSION */
	__u16 flags;		/* KEYAGENT_REQUEST_* */
	__s32 serial;		/* the key under construction */
	__s32 pid;		/* requesting thread in the reader's pid namespace, or 0 */
	__u32 uid;		/* requester's fsuid in the reader's user namespace */
	__u32 gid;		/* requester's fsgid in the reader's user namespace */
	__u16 type_len;		/* bytes of the key type's name */
	__u16 description_len;	/* bytes of the key's description */
	__u32 callout_len;	/* bytes of the callout information */
	/*
	 * Then the type name, the description and the callout information,
	 * each followed by a NUL, then zeros up to size.
	 */
};

/* The kernel made the request (override credentials or a kernel thread). */
#define KEYAGENT_REQUEST_KERNEL 0x1

/* An answer, as written. */
struct keyagent_answer {
	__u32 size;		/* bytes of the record, a multiple of 8 */
	__u16 version;		/* KEYAGENT_ABI_VERSION */
	__u16 op;		/* KEYAGENT_OP_* */
	__s32 serial;		/* a key under construction this channel read */
	__u32 error;		/* REJECT: the positive errno; otherwise 0 */
	__u32 timeout;		/* seconds the key (INSTANTIATE, 0: forever) or the failure lives */
	__u32 payload_len;	/* INSTANTIATE: bytes of payload; otherwise 0 */
	/* Then the payload, then zeros up to size. */
};

#define KEYAGENT_OP_INSTANTIATE 1
#define KEYAGENT_OP_REJECT 2
#define KEYAGENT_OP_NEGATE 3	/* reject with ENOKEY, as keyctl_negate() */

/*
 * write() errors:
 *
 *	EINVAL	a record is short, oversized, misaligned, of another version,
 *		with an unknown op, a bad error or payload_len, a nonzero pad
 *		byte, or a serial twice; or the write is not whole records
 *	ENOENT	a serial this channel has not read, or whose construction ended
 *
 * Those are checked for every record before any is applied: the write changes
 * nothing. Records are then applied in order; if the key type refuses a
 * payload (or the construction ends meanwhile), write() returns the bytes of
 * the records applied before it, or that error if it is the first.
 */

#endif /* _KEYAGENT_H */
