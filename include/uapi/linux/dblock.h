/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * dblock: block devices whose data is served by a userspace program.
 *
 * This header is the whole ABI between dblock.ko and userspace.
 *
 * Control: /dev/dblockctl (root only) creates, destroys, lists and describes
 * devices with the DBLOCK_CTL_* commands.
 *
 * Serving: each device has a channel, the char device /dev/dblock/<id>
 * (root only), opened by exactly one server process at a time.  The server:
 *   1. gives each hardware queue a buffer area of DBLOCK_DEV_INFO.buffer_bytes
 *      bytes.  The data of the request with tag t lives at
 *      t * config.max_io_bytes in that area, for the length the request says.
 *      With DBLOCK_FEAT_USER_BUFFERS the area is the server's own memory,
 *      passed in every DBLOCK_IOC_SERVE call as @buffer_ptr; the kernel
 *      copies data in and out during that call, so the memory is the
 *      server's (it counts to its RSS and cgroup, and pages that are never
 *      used are never touched).  Without it (@buffer_ptr 0), the server
 *      mmaps queue q's area from the channel at file offset
 *      q * buffer_bytes (MAP_SHARED, read and write); the kernel allocates
 *      that area at the first mmap or SERVE that needs it;
 *   2. runs one thread per queue, each looping on DBLOCK_IOC_SERVE, which
 *      hands back the results of finished requests and then waits for new
 *      ones ("commit and fetch");
 *   3. calls DBLOCK_IOC_START from another thread once the queue threads
 *      run: it waits until every queue has a thread in DBLOCK_IOC_SERVE and
 *      only then adds the disk, so the partition scan and udev's probing are
 *      answered.
 * Write data is in the buffer when the request is fetched; read data must be
 * in the buffer when its completion is handed back.  When the device is
 * destroyed, DBLOCK_IOC_SERVE returns DBLOCK_SERVE_GONE in .status and no
 * further request will come.
 *
 * When the server closes the channel (it exits or dies), what happens to the
 * requests it had taken and to new ones is the device's recovery policy:
 * DBLOCK_RECOVERY_FAIL fails them at once; DBLOCK_RECOVERY_WAIT holds them
 * for @grace_ms, and a new server that opens the channel in that time gets
 * them all again, including those the dead server had taken but not
 * answered: a backend must accept seeing a write twice.  A request not
 * answered within @timeout_ms fails with an I/O error.
 *
 * All structures have fixed-width fields and explicit padding, so 32- and
 * 64-bit userspace share one layout.  Reserved fields and padding must be
 * zero on input and are zero on output; unknown flags are refused (EINVAL).
 */
#ifndef _UAPI_LINUX_DBLOCK_H
#define _UAPI_LINUX_DBLOCK_H

#include <linux/ioctl.h>
#include <linux/types.h>

/*
 * Raised on incompatible changes; additions are announced by feature bits.
 * 2: struct dblock_request has 8 reserved bytes (32 in all) and servers say
 * the size of its elements in dblock_serve.request_size.
 */
#define DBLOCK_ABI_VERSION		2

/* Feature bits reported by DBLOCK_CTL_GET_VERSION. */
#define DBLOCK_FEAT_FLUSH		(1ULL << 0)	/* flush and FUA */
#define DBLOCK_FEAT_READ_ONLY		(1ULL << 1)
#define DBLOCK_FEAT_DISCARD		(1ULL << 2)	/* discard, write zeroes */
#define DBLOCK_FEAT_RECOVERY		(1ULL << 3)	/* policies, takeover */
#define DBLOCK_FEAT_SET_PARAMS		(1ULL << 4)	/* incl. online resize */
#define DBLOCK_FEAT_USER_BUFFERS	(1ULL << 5)	/* dblock_serve.buffer_ptr */
#define DBLOCK_FEAT_KICK		(1ULL << 6)	/* DBLOCK_IOC_KICK */
/* DBLOCK_IOC_SET_BACKEND, DBLOCK_CTL_GET_BACKEND */
#define DBLOCK_FEAT_BACKEND_DESC	(1ULL << 7)
#define DBLOCK_FEAT_COMMIT		(1ULL << 8)	/* DBLOCK_IOC_COMMIT */
/* DBLOCK_IOC_SET_FILE, DBLOCK_CPL_FILE */
#define DBLOCK_FEAT_FILE_IO		(1ULL << 9)
#define DBLOCK_FEAT_SUPPORTED		(DBLOCK_FEAT_FLUSH | DBLOCK_FEAT_READ_ONLY | \
					 DBLOCK_FEAT_DISCARD | DBLOCK_FEAT_RECOVERY | \
					 DBLOCK_FEAT_SET_PARAMS | \
					 DBLOCK_FEAT_USER_BUFFERS | DBLOCK_FEAT_KICK | \
					 DBLOCK_FEAT_BACKEND_DESC | DBLOCK_FEAT_COMMIT | \
					 DBLOCK_FEAT_FILE_IO)

#define DBLOCK_NAME_MAX			32	/* including the NUL */
#define DBLOCK_BACKEND_MAX		128	/* including the NUL */
#define DBLOCK_MAX_QUEUES		64
#define DBLOCK_MAX_QUEUE_DEPTH		1024
#define DBLOCK_MIN_IO_BYTES		4096
#define DBLOCK_MAX_IO_BYTES		(4U << 20)
/*
 * queue_depth * max_io_bytes: one queue's buffer area, which is the server's
 * own memory (DBLOCK_FEAT_USER_BUFFERS) or, mmapped from the channel, the
 * kernel's.
 */
#define DBLOCK_MAX_BUFFER_BYTES		(256U << 20)

/* dblock_dev_config.flags */
/*
 * The server implements flush: the disk declares a volatile write cache
 * and FUA, and the server receives DBLOCK_OP_FLUSH and DBLOCK_REQ_FUA.
 */
#define DBLOCK_DEV_FLUSH		(1ULL << 0)
/* Writes fail; the disk is marked read-only. */
#define DBLOCK_DEV_READ_ONLY		(1ULL << 1)
/* The server implements DBLOCK_OP_DISCARD. */
#define DBLOCK_DEV_DISCARD		(1ULL << 2)
/* The server implements DBLOCK_OP_WRITE_ZEROES. */
#define DBLOCK_DEV_WRITE_ZEROES		(1ULL << 3)
#define DBLOCK_DEV_FLAGS_ALL		(DBLOCK_DEV_FLUSH | DBLOCK_DEV_READ_ONLY | \
					 DBLOCK_DEV_DISCARD | DBLOCK_DEV_WRITE_ZEROES)

/* dblock_dev_config.timeout_ms */
#define DBLOCK_TIMEOUT_DEFAULT		0		/* 30 seconds */
#define DBLOCK_TIMEOUT_NEVER		0xffffffffU

/* dblock_dev_config.recovery: what happens when the server goes away. */
enum {
	DBLOCK_RECOVERY_FAIL	= 0,	/* fail its requests and new ones */
	DBLOCK_RECOVERY_WAIT	= 1,	/* hold them for a new server */
};

/*
 * A device's shape, set by userspace at creation (DBLOCK_CTL_CREATE); the
 * kernel reports it back with the defaults its zeroes stand for filled in.
 * @name: the disk's name (/dev/<name>), [A-Za-z0-9_-], NUL-terminated.
 * @size_bytes: a non-zero multiple of @logical_block_size.
 * @logical_block_size: 512, 1024, 2048 or 4096.
 * @max_io_bytes: largest request, a multiple of 4096 and of the block size,
 *	DBLOCK_MIN_IO_BYTES..DBLOCK_MAX_IO_BYTES.
 * @nr_queues: hardware queues, 1..DBLOCK_MAX_QUEUES.
 * @queue_depth: requests in flight per queue, 1..DBLOCK_MAX_QUEUE_DEPTH,
 *	and @queue_depth * @max_io_bytes <= DBLOCK_MAX_BUFFER_BYTES.
 * @timeout_ms: a request not answered in this time fails with an I/O error;
 *	DBLOCK_TIMEOUT_DEFAULT (30 s) or DBLOCK_TIMEOUT_NEVER.
 * @flags: DBLOCK_DEV_*.
 * @physical_block_size: 0 (same as logical) or a power of two from the
 *	logical block size to 65536.
 * @io_opt_bytes: optimal I/O size, 0 (none) or a multiple of the physical
 *	block size.
 * @discard_granularity: with DBLOCK_DEV_DISCARD: 0 (the logical block size)
 *	or a power-of-two multiple of it.
 * @max_discard_bytes: with DBLOCK_DEV_DISCARD: largest discard; 0 = 1 GiB.
 * @max_write_zeroes_bytes: with DBLOCK_DEV_WRITE_ZEROES: largest request;
 *	0 = 1 GiB.  Neither discards nor write-zeroes carry data.
 * @recovery: DBLOCK_RECOVERY_*.
 * @grace_ms: with DBLOCK_RECOVERY_WAIT, how long requests are held for a
 *	new server before they fail; 0 = forever.
 * @__pad, @__reserved: zero.
 */
struct dblock_dev_config {
	char	name[DBLOCK_NAME_MAX];
	__u64	size_bytes;
	__u32	logical_block_size;
	__u32	max_io_bytes;
	__u16	nr_queues;
	__u16	queue_depth;
	__u32	timeout_ms;
	__u64	flags;
	__u32	physical_block_size;
	__u32	io_opt_bytes;
	__u32	discard_granularity;
	__u32	max_discard_bytes;
	__u32	max_write_zeroes_bytes;
	__u32	grace_ms;
	__u8	recovery;
	__u8	__pad[7];
	__u64	__reserved[4];
};

/* dblock_dev_info.state */
enum {
	DBLOCK_STATE_CREATED	= 0,	/* no disk yet: waiting for START */
	DBLOCK_STATE_LIVE	= 1,	/* disk added, requests flow */
	DBLOCK_STATE_DEAD	= 2,	/* destroyed, waiting for the last user */
};

/*
 * Request counters of a device since its creation, kept by the kernel.
 * @reads, @writes, @flushes, @discards, @write_zeroes: requests handed to a
 *	server, by operation.
 * @errors: requests the server answered with an error, or whose data
 *	could not be copied to or from its buffer.
 * @timeouts: requests that failed because the device's timeout_ms passed.
 * @requeued: requests handed again to a new server after the previous one
 *	went away (DBLOCK_RECOVERY_WAIT).
 * @rejected: completions refused (see DBLOCK_IOC_SERVE).
 * @file_ios: reads and writes the kernel started on the server's file
 *	(DBLOCK_CPL_FILE); with DBLOCK_FEAT_FILE_IO, else zero.
 * @__reserved: zero.
 */
struct dblock_dev_stats {
	__u64	reads;
	__u64	writes;
	__u64	flushes;
	__u64	discards;
	__u64	write_zeroes;
	__u64	errors;
	__u64	timeouts;
	__u64	requeued;
	__u64	rejected;
	__u64	file_ios;
	__u64	__reserved[2];
};

/*
 * What the kernel tells about a device (DBLOCK_CTL_CREATE, DBLOCK_CTL_GET_INFO,
 * DBLOCK_IOC_GET_INFO); every field is set by the kernel.
 * @config: as created, with defaults filled in and later changes applied.
 * @id: the device's number; its channel is /dev/dblock/<id>.
 * @state: DBLOCK_STATE_*.
 * @server_pid: pid (in the caller's namespace) of the process holding the
 *	channel open, 0 if none.
 * @buffer_bytes: size of one queue's buffer area and the stride between
 *	queues in the channel's mmap offsets (a multiple of the page size).
 * @disk_major, @disk_minor: the disk's device number (0:0 before START).
 * @stats: the device's counters.
 * @features: the module's DBLOCK_FEAT_* bits, as DBLOCK_CTL_GET_VERSION
 *	reports them, so that a server holding only the channel can tell.
 * @__reserved: zero.
 */
struct dblock_dev_info {
	struct dblock_dev_config config;
	__u32	id;
	__u32	state;
	__s32	server_pid;
	__u32	buffer_bytes;
	__u32	disk_major;
	__u32	disk_minor;
	struct dblock_dev_stats stats;
	__u64	features;
	__u64	__reserved[3];
};

/*
 * DBLOCK_CTL_GET_VERSION, filled in by the kernel.
 * @abi_version: the module's DBLOCK_ABI_VERSION: a program built with
 *	another one must not use the module.
 * @features: DBLOCK_FEAT_* of what the module supports.
 * @__pad, @__reserved: zero.
 */
struct dblock_ctl_version {
	__u32	abi_version;
	__u32	__pad;
	__u64	features;
	__u64	__reserved[2];
};

/* DBLOCK_CTL_CREATE: @config in, @info out (id, buffer_bytes, ...). */
struct dblock_ctl_create {
	struct dblock_dev_config config;
	struct dblock_dev_info info;
};

/* dblock_ctl_target.flags, for DBLOCK_CTL_DESTROY only */
/* Destroy even while the disk is open: fail its I/O, remove it. */
#define DBLOCK_DESTROY_FORCE		(1U << 0)

/*
 * Selects one device, set by userspace: by @name when name[0] is not NUL,
 * else by @id (ids start at 0).
 * @flags: DBLOCK_DESTROY_* for DBLOCK_CTL_DESTROY, 0 for other commands.
 * @__reserved: zero.
 */
struct dblock_ctl_target {
	char	name[DBLOCK_NAME_MAX];
	__u32	id;
	__u32	flags;
	__u64	__reserved[2];
};

/* dblock_ctl_set_params.mask: which fields to apply */
#define DBLOCK_SET_SIZE			(1U << 0)
#define DBLOCK_SET_TIMEOUT		(1U << 1)
#define DBLOCK_SET_RECOVERY		(1U << 2)	/* @recovery and @grace_ms */
#define DBLOCK_SET_ALL			(DBLOCK_SET_SIZE | DBLOCK_SET_TIMEOUT | \
					 DBLOCK_SET_RECOVERY)

/*
 * DBLOCK_CTL_SET_PARAMS, set by userspace: changes a live device.
 * @target: the device (@target.flags 0).
 * @mask: DBLOCK_SET_*: which of the fields below apply; the others are
 *	ignored.
 * @size_bytes: resizes it (grow or shrink; the disk's users see the new
 *	size at once, its server with DBLOCK_SERVE_RESIZED).
 * @timeout_ms, @recovery, @grace_ms: as in struct dblock_dev_config.
 * @__pad, @__reserved: zero.
 */
struct dblock_ctl_set_params {
	struct dblock_ctl_target target;
	__u32	mask;
	__u32	timeout_ms;
	__u64	size_bytes;
	__u32	grace_ms;
	__u8	recovery;
	__u8	__pad[3];
	__u64	__reserved[4];
};

/* DBLOCK_CTL_GET_INFO: @target in, @info out. */
struct dblock_ctl_get_info {
	struct dblock_ctl_target target;
	struct dblock_dev_info info;
};

/*
 * DBLOCK_CTL_LIST: fills @ids_ptr (an array of @capacity __u32) with the ids
 * of existing devices in increasing order and sets @count to the number of
 * devices, which may exceed @capacity (call again with a larger array).
 * Userspace sets @ids_ptr and @capacity, and @count and @__reserved to zero.
 */
struct dblock_ctl_list {
	__u64	ids_ptr;
	__u32	capacity;
	__u32	count;
	__u64	__reserved[2];
};

/*
 * A short description of what serves a device, for people and tools
 * ("file:/srv/vol1.img", "rbd:pool/image", "ram"); the kernel keeps and
 * shows it (DBLOCK_CTL_GET_BACKEND, /sys/block/<name>/dblock/backend) but
 * gives it no meaning.  With DBLOCK_FEAT_BACKEND_DESC.
 * @text: NUL-terminated within the array and NUL-padded after it; no
 *	control characters (bytes below 0x20, 0x7f), so one line of text.
 *	Other bytes (UTF-8) pass as they are.  Empty: none.  A longer
 *	description must be shortened by the server (libdblock keeps the end
 *	of it, after "...").
 * @__reserved: zero.
 * Anything else is refused with EINVAL.
 *
 * Its life: a server sets it with DBLOCK_IOC_SET_BACKEND on the channel it
 * holds, normally before DBLOCK_IOC_START, so that it is there when udev
 * sees the disk, and may set it again at any time.  When a server opens the
 * channel the description is cleared, so a new server taking over shows
 * its own or none, never its predecessor's.  When the server closes the
 * channel (exits or dies) the description stays: a device waiting for a
 * new server (DBLOCK_RECOVERY_WAIT) still says what served it.
 */
struct dblock_backend {
	char	text[DBLOCK_BACKEND_MAX];
	__u64	__reserved[2];
};

/*
 * DBLOCK_CTL_GET_BACKEND: @target in (@target.flags 0), @backend out: the
 * device's description, all zeroes if none was set.  It is a command of its
 * own because struct dblock_dev_info has no room for it.
 */
struct dblock_ctl_get_backend {
	struct dblock_ctl_target target;
	struct dblock_backend backend;
};

/* Operations, dblock_request.op */
enum {
	DBLOCK_OP_READ		= 0,
	DBLOCK_OP_WRITE		= 1,
	DBLOCK_OP_FLUSH		= 2,	/* make every completed write durable */
	DBLOCK_OP_DISCARD	= 3,	/* the range's data is no longer needed */
	DBLOCK_OP_WRITE_ZEROES	= 4,	/* the range must read back as zeroes */
};

/* dblock_request.flags */
#define DBLOCK_REQ_FUA		(1U << 0)	/* write: durable before completing */
#define DBLOCK_REQ_NOUNMAP	(1U << 1)	/* write zeroes: keep it allocated */

/*
 * One request handed to the server, written by the kernel into the array
 * of DBLOCK_IOC_SERVE (every dblock_serve.request_size bytes).  Offsets and
 * lengths are in bytes and multiples of the logical block size.
 * @tag: the request's slot, 0..queue_depth - 1: its data is at
 *	@tag * max_io_bytes in the queue's buffer area.
 * @op: DBLOCK_OP_*.
 * @flags: DBLOCK_REQ_*.
 * @offset: where on the device; 0 for a flush.
 * @length: how many bytes, at most max_io_bytes for a read or a write
 *	(discard and write zeroes carry no data); 0 for a flush.
 * @seq: echo it in the completion: it tells this use of @tag from a later
 *	one, so a late answer cannot complete another request.
 * @__pad, @__reserved: zero.  A later ABI may give them a meaning, which a
 *	feature bit announces; zero will then still mean what it means now.
 */
struct dblock_request {
	__u16	tag;
	__u8	op;
	__u8	__pad;
	__u32	flags;
	__u64	offset;
	__u32	length;
	__u32	seq;
	__u64	__reserved;
};

/* Elements of the request array are at least this large (ABI 2's struct). */
#define DBLOCK_REQUEST_SIZE_MIN	32

/* dblock_completion.flags */
/*
 * With DBLOCK_FEAT_FILE_IO: the answer to a read or a write is "do it on the
 * file set with DBLOCK_IOC_SET_FILE": the kernel reads or writes the
 * request's own pages at dblock_file.offset + the request's offset, and the
 * request ends when that I/O does, with its result.  @result must be 0.
 * A read the file ends short of is filled with zeroes; a FUA write is
 * written with O_DSYNC semantics.  Any other request answered so, or one
 * answered so while no file is set, fails with an I/O error.
 */
#define DBLOCK_CPL_FILE		(1U << 0)

/*
 * The server's answer to one request, read by the kernel from the array of
 * DBLOCK_IOC_SERVE.
 * @tag, @seq: those of the request answered.
 * @flags: DBLOCK_CPL_*; 0 before DBLOCK_FEAT_FILE_IO, where this was
 *	padding.
 * @result: 0 or a negative errno (-EIO, -ENOSPC, ...), which the request's
 *	submitter sees.
 * @__reserved: zero, or the completion is refused (so are unknown flags).
 */
struct dblock_completion {
	__u16	tag;
	__u16	flags;
	__s32	result;
	__u32	seq;
	__u32	__reserved;
};

/* dblock_serve.flags */
#define DBLOCK_SERVE_NOWAIT	(1U << 0)	/* fetch without sleeping */

/* dblock_serve.status */
#define DBLOCK_SERVE_GONE	(1U << 0)	/* destroyed: no more requests */
/*
 * The device's size changed: read it with DBLOCK_IOC_GET_INFO before
 * serving the requests of this batch.
 */
#define DBLOCK_SERVE_RESIZED	(1U << 1)

/*
 * DBLOCK_IOC_SERVE: commit and fetch, one queue at a time per thread.
 * In:  @queue, @flags, @completions_ptr/@nr_completions (answers to requests
 *      this queue fetched), @requests_ptr/@max_requests (room for new ones),
 *      @request_size, @buffer_ptr; @__pad2 and @__reserved zero.
 * @max_requests may be 0: the call then only hands back completions.
 * Out: @nr_requests fetched, @nr_rejected completions refused (unknown tag,
 *      stale seq, answered twice, timed out), @status (DBLOCK_SERVE_*).
 *      Their values on input are ignored, so one struct can be reused from
 *      call to call.
 * @request_size: the size of one element of the @requests_ptr array: the
 *      server's sizeof(struct dblock_request).  At least
 *      DBLOCK_REQUEST_SIZE_MIN and a multiple of 8, or EINVAL: 0 too, so that
 *      a server of ABI 1, where this was padding, is refused rather than
 *      misread.  Request i is written at @requests_ptr + i * @request_size:
 *      the kernel's struct dblock_request and zeroes up to @request_size.
 *      So a server built with a later, larger struct runs on this kernel,
 *      and finds zeroes in the fields this kernel does not fill; and later
 *      kernels, whose struct may grow, keep accepting the servers of this
 *      one (DBLOCK_REQUEST_SIZE_MIN) and never hand them a request that
 *      needs more than @request_size bytes to be described.
 * @buffer_ptr: the queue's buffer area in the server's memory, or 0 for the
 *      mmapped one.  Read data is taken from it for the completions of this
 *      call and write data put in it for the requests fetched, so a queue
 *      should keep one area from call to call.  EFAULT if the range is not
 *      user memory; a request whose data cannot be copied (a page that is
 *      not mapped, or not writable) fails with an I/O error and is not
 *      handed to the server.
 * The completions are consumed even when the call then fails (EINTR when a
 * signal arrives while waiting).  EBUSY: another thread serves this queue.
 */
struct dblock_serve {
	__u64	completions_ptr;
	__u64	requests_ptr;
	__u32	nr_completions;
	__u32	max_requests;
	__u16	queue;
	__u16	request_size;
	__u32	flags;
	__u32	nr_requests;
	__u32	nr_rejected;
	__u32	status;
	__u32	__pad2;
	__u64	buffer_ptr;
	__u64	__reserved;
};

/*
 * DBLOCK_IOC_COMMIT (DBLOCK_FEAT_COMMIT): hands back answers of one queue
 * from any thread, without fetching or waiting.  A server whose answers come
 * from other threads (asynchronous backends, workers) ends each request
 * where it finishes, rather than passing it to the queue's thread
 * (DBLOCK_IOC_KICK and its next SERVE): one system call instead of two and a
 * wakeup.  Any number of threads may commit for a queue while its thread is
 * in DBLOCK_IOC_SERVE; each answer claims its request, and a second answer
 * to one request is refused.
 * In:  @completions_ptr/@nr_completions (1..queue_depth) as in
 *      DBLOCK_IOC_SERVE; @buffer_ptr, the queue's buffer area as the queue's
 *      SERVE calls pass it (read data is taken from it), or 0 for the
 *      mmapped one; @queue; @__pad and @__reserved zero.
 * Out: @nr_rejected as in DBLOCK_IOC_SERVE.
 * EINVAL (bad arguments) and EFAULT on @buffer_ptr consume nothing; an
 * EFAULT on the array consumes the answers read before it.
 */
struct dblock_commit {
	__u64	completions_ptr;
	__u64	buffer_ptr;
	__u32	nr_completions;
	__u32	nr_rejected;
	__u16	queue;
	__u16	__pad[3];
	__u64	__reserved[2];
};

/* dblock_file.flags */
/*
 * Write requests are fetched without their data: the buffer's slot is not
 * written, and the server must answer each write with DBLOCK_CPL_FILE or an
 * error (a success without it fails the write, with an I/O error).  Saves
 * a copy of every byte written, for servers that send every write to the
 * file.
 */
#define DBLOCK_FILE_NO_WRITE_DATA	(1U << 0)

/*
 * DBLOCK_IOC_SET_FILE (DBLOCK_FEAT_FILE_IO), set by the server: the file on
 * which the kernel does the reads and writes the server answers with
 * DBLOCK_CPL_FILE, as a loop device does (the request's pages go to the
 * file: no copy through the server's buffer).  The server decides per
 * request; discards, write zeroes and flushes stay its own (a flush is the
 * server's fsync of the same file, which covers the writes done here).
 * @fd: a descriptor of the server's, opened for reading, and for writing
 *	unless the device is read-only; a regular file or a block device
 *	(not this device's), not O_APPEND.  With O_DIRECT the I/O is
 *	asynchronous and the answering call returns at once; without it, the
 *	call that hands back the answer does the I/O.  The kernel keeps its
 *	own reference: the server may close @fd.  -1 forgets the file (then
 *	@flags and @offset are 0).
 * @flags: DBLOCK_FILE_*.
 * @offset: the file's byte where the device begins, a multiple of the
 *	logical block size.
 * @__reserved: zero.
 * EBADF for a descriptor that is not open or not open as needed, EINVAL for
 * a file of another kind or bad fields.  A server that opens the channel
 * starts with no file; the file is forgotten when it closes the channel.
 * I/O begun on a file goes on after it is replaced or forgotten.
 */
struct dblock_file {
	__s32	fd;
	__u32	flags;
	__u64	offset;
	__u64	__reserved[2];
};

#define DBLOCK_IOCTL_TYPE	0xDB

/* On /dev/dblockctl */
#define DBLOCK_CTL_GET_VERSION	_IOR(DBLOCK_IOCTL_TYPE, 0x00, struct dblock_ctl_version)
#define DBLOCK_CTL_CREATE	_IOWR(DBLOCK_IOCTL_TYPE, 0x01, struct dblock_ctl_create)
/*
 * DBLOCK_CTL_DESTROY: EBUSY while the disk is open (mounted, or held by any
 * process), unless DBLOCK_DESTROY_FORCE.  Opening the disk fails (ENXIO)
 * from the moment a destroy has found it closed, or was forced.
 */
#define DBLOCK_CTL_DESTROY	_IOW(DBLOCK_IOCTL_TYPE, 0x02, struct dblock_ctl_target)
#define DBLOCK_CTL_LIST		_IOWR(DBLOCK_IOCTL_TYPE, 0x03, struct dblock_ctl_list)
#define DBLOCK_CTL_GET_INFO	_IOWR(DBLOCK_IOCTL_TYPE, 0x04, struct dblock_ctl_get_info)
#define DBLOCK_CTL_SET_PARAMS	_IOW(DBLOCK_IOCTL_TYPE, 0x05, struct dblock_ctl_set_params)
#define DBLOCK_CTL_GET_BACKEND	_IOWR(DBLOCK_IOCTL_TYPE, 0x06, struct dblock_ctl_get_backend)

/* On a device's channel /dev/dblock/<id> */
#define DBLOCK_IOC_GET_INFO	_IOR(DBLOCK_IOCTL_TYPE, 0x40, struct dblock_dev_info)
/*
 * DBLOCK_IOC_START: interruptible (EINTR); EALREADY once the disk exists
 * (a server taking over a live device does not call it), ENODEV after
 * destroy.
 */
#define DBLOCK_IOC_START	_IO(DBLOCK_IOCTL_TYPE, 0x41)
#define DBLOCK_IOC_SERVE	_IOWR(DBLOCK_IOCTL_TYPE, 0x42, struct dblock_serve)
/*
 * DBLOCK_IOC_KICK, argument the queue's index: makes that queue's current or
 * next DBLOCK_IOC_SERVE return without waiting for requests.  For servers
 * whose answers come from other threads (asynchronous backends): the queue
 * thread waiting in SERVE is told it has completions to hand back, without
 * a signal.  Any thread may call it; EINVAL for a queue that does not exist.
 */
#define DBLOCK_IOC_KICK		_IO(DBLOCK_IOCTL_TYPE, 0x43)
/* DBLOCK_IOC_SET_BACKEND: the server sets its device's description. */
#define DBLOCK_IOC_SET_BACKEND	_IOW(DBLOCK_IOCTL_TYPE, 0x44, struct dblock_backend)
#define DBLOCK_IOC_COMMIT	_IOWR(DBLOCK_IOCTL_TYPE, 0x45, struct dblock_commit)
#define DBLOCK_IOC_SET_FILE	_IOW(DBLOCK_IOCTL_TYPE, 0x46, struct dblock_file)

#endif /* _UAPI_LINUX_DBLOCK_H */
