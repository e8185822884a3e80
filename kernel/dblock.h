/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dblock: private definitions shared by the module's files.
 */
#ifndef DBLOCK_H
#define DBLOCK_H

#include <linux/blk-mq.h>
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/sizes.h>
#include <linux/spinlock.h>
#include <linux/u64_stats_sync.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include <linux/dblock.h>

#include "dblock_probes.h"

#define DBLOCK_PART_MINORS	16	/* the disk and 15 partitions */
#define DBLOCK_MAX_DEVICES	1024
#define DBLOCK_TIMEOUT_MS	30000
#define DBLOCK_MAX_SPECIAL_BYTES	SZ_1G	/* discard, write zeroes */

/*
 * Lock order.  Locks nest only down this list, and never the pairs said not
 * to; nothing here is taken from interrupt context.
 *
 * dblock_ctl_mutex (dblock_main.c): the device table.  Held to create a
 *	device and fill in its info (-> @server_lock) and at module exit, to
 *	remove the idle devices left (-> each lock below but @serving).
 *	Never held while something may wait for a server: destroy counts
 *	a disk's openers and removes it, and DBLOCK_CTL_SET_PARAMS waits for
 *	@lock, each with a reference on the device instead; the other
 *	commands on one device (GET_INFO, GET_BACKEND) take a reference too.
 * dblock_dev.lock: @state, adding the disk, the parameters.  Held across
 *	device_add_disk() (-> disk->open_mutex; the partition scan's I/O,
 *	which a server answers without any of these locks) and a resize
 *	(-> dblock_queue.lock).  Never held together with @server_lock.
 * disk->open_mutex (the block layer's): held around ->open, which takes
 *	no dblock lock, and around a last close's writeback, which waits for
 *	the server; so destroy takes it with no dblock lock held, to count
 *	the openers and set @removing (dblock_dev_mark_removing()).
 * dblock_dev.server_lock: @server, @holding, @backend.  Held to attach or detach a
 *	server and to fail or requeue requests (-> dblock_queue.lock).  The
 *	grace work and the sysfs attributes take it, so neither
 *	cancel_delayed_work_sync() of that work nor del_gendisk() (which waits
 *	for sysfs readers) is called with it held.
 * dblock_queue.serving: bit 0, held by one DBLOCK_IOC_SERVE call at a time
 *	and only ever tried (EBUSY), never waited for (-> dblock_queue.lock,
 *	and the server's mmap_lock when its pages are pinned).
 *	DBLOCK_IOC_COMMIT takes no dblock lock but dblock_queue.lock, to put
 *	back a request it could not answer.
 * dblock_queue.lock: a spinlock, innermost: ->queue_rq and the timeout
 *	handler take it alone, and nothing else is taken while it is held.
 * dblock_dev.file_lock: a spinlock, taken alone, to change the server's
 *	file or take a reference on it.
 */

/*
 * Counters one queue's serving thread updates (in DBLOCK_IOC_SERVE's fetch);
 * see struct dblock_dev_stats.  Those a DBLOCK_IOC_COMMIT from any thread
 * may change are the device's atomics.
 */
struct dblock_queue_stats {
	struct u64_stats_sync	sync;
	u64_stats_t		reads;
	u64_stats_t		writes;
	u64_stats_t		flushes;
	u64_stats_t		discards;
	u64_stats_t		write_zeroes;
};

/*
 * One hardware queue.  Requests go from ->queue_rq onto @pending, a server
 * thread takes them off in DBLOCK_IOC_SERVE; only one thread serves a queue
 * at a time (@serving), so @req_scratch needs no lock.  Answers may come
 * from any thread (DBLOCK_IOC_COMMIT): they claim their request through
 * dblock_cmd.state and use no shared scratch.
 */
struct dblock_queue {
	spinlock_t		lock;		/* @pending, @no_server, @gone, @resized */
	struct list_head	pending;
	bool			no_server;	/* fail new requests at once */
	bool			gone;		/* destroyed: answer GONE */
	bool			resized;	/* tell the server once */
	bool			kicked;		/* DBLOCK_IOC_KICK: stop waiting */
	wait_queue_head_t	wait;

	unsigned long		serving;	/* bit 0: a thread is in SERVE */
	bool			ready;		/* a thread has entered SERVE */
	struct dblock_dev	*dev;
	unsigned int		index;
	void			*buf;		/* mmap area; see dblock_queue_area() */
	struct dblock_request	*req_scratch;
	/*
	 * By tag, the requests the server holds.  Set when fetched, cleared
	 * before the request completes: a completion only ever looks here, so
	 * a bad tag from the server never reaches the block layer's tables.
	 */
	struct request		**inflight;
	struct dblock_queue_stats stats;
} ____cacheline_aligned_in_smp;

/*
 * dblock_cmd.state packs a sequence number with the state so that one
 * cmpxchg both checks the server's seq and claims the request.
 */
enum {
	DBLOCK_CMD_IDLE,
	DBLOCK_CMD_QUEUED,	/* on dblock_queue.pending */
	DBLOCK_CMD_FETCHING,	/* being copied out to the server */
	DBLOCK_CMD_FETCHED,	/* owned by the server */
	DBLOCK_CMD_DONE,	/* claimed by whoever completes it */
};

#define DBLOCK_CMD_STATE_BITS	3
#define DBLOCK_CMD_STATE_MASK	((1U << DBLOCK_CMD_STATE_BITS) - 1)
#define DBLOCK_CMD_SEQ_MASK	((1U << (32 - DBLOCK_CMD_STATE_BITS)) - 1)

struct dblock_cmd {
	struct list_head	node;
	atomic_t		state;
	blk_status_t		status;
	/* A write fetched without its data (DBLOCK_FILE_NO_WRITE_DATA). */
	bool			no_data;
	/* I/O on the server's file (DBLOCK_CPL_FILE); see dblock_file.c. */
	atomic_t		file_ref;
	long			file_ret;
	struct bio_vec		*bvec;
	struct kiocb		iocb;
};

struct dblock_dev {
	/*
	 * Fixed at creation but for size_bytes, timeout_ms, recovery and
	 * grace_ms, which DBLOCK_CTL_SET_PARAMS changes under @lock and the
	 * I/O path reads with READ_ONCE().
	 */
	struct dblock_dev_config config;
	u32			id;
	unsigned int		buffer_bytes;

	struct mutex		lock;		/* @state, adding the disk, params */
	unsigned int		state;		/* DBLOCK_STATE_* */
	/* Destroy began: the disk cannot be opened.  Under disk->open_mutex. */
	bool			removing;
	bool			add_failed;
	wait_queue_head_t	start_wait;
	atomic_t		nr_ready;

	/*
	 * The server's file (DBLOCK_IOC_SET_FILE), with its offset and flags:
	 * a reference is taken under @file_lock for each I/O.
	 */
	spinlock_t		file_lock;
	struct file		*file;
	u64			file_offset;
	u32			file_flags;

	struct mutex		server_lock;	/* @server, @holding, @backend */
	struct pid		*server;
	/* Set by the server (DBLOCK_IOC_SET_BACKEND), NUL-terminated. */
	char			backend[DBLOCK_BACKEND_MAX];
	/* No server, DBLOCK_RECOVERY_WAIT: requests wait for the next one. */
	bool			holding;
	struct delayed_work	grace_work;

	atomic64_t		timeouts;
	atomic64_t		requeued;
	atomic64_t		errors;
	atomic64_t		rejected;
	atomic64_t		file_ios;

	struct blk_mq_tag_set	tag_set;
	struct gendisk		*disk;
	struct dblock_queue	*queues;

	/* The channel; its release frees the whole device. */
	struct cdev		cdev;
	struct device		cdev_dev;
};

extern struct class dblock_chan_class;
extern dev_t dblock_chan_devt;
extern int dblock_major;

/* dblock_dev.c: lifecycle and parameters */
int dblock_config_validate(struct dblock_dev_config *cfg);
struct dblock_dev *dblock_dev_create(const struct dblock_dev_config *cfg,
				     u32 id);
void dblock_dev_remove(struct dblock_dev *dev, bool force);
void dblock_dev_fill_info(struct dblock_dev *dev, struct dblock_dev_info *info);
int dblock_dev_mark_removing(struct dblock_dev *dev, bool force);
int dblock_dev_start(struct dblock_dev *dev);
int dblock_dev_set_params(struct dblock_dev *dev,
			  const struct dblock_ctl_set_params *p);
void dblock_dev_server_attach(struct dblock_dev *dev);
int dblock_dev_set_backend(struct dblock_dev *dev,
			   const struct dblock_backend *b);
void dblock_dev_get_backend(struct dblock_dev *dev,
			    char text[DBLOCK_BACKEND_MAX]);
void dblock_dev_server_detach(struct dblock_dev *dev);

/* dblock_io.c: the blk-mq side */
extern const struct blk_mq_ops dblock_mq_ops;
void dblock_io_fail_all(struct dblock_dev *dev);
void dblock_io_requeue_fetched(struct dblock_dev *dev);
unsigned int dblock_timeout_jiffies(u32 timeout_ms);

static inline void dblock_cmd_set_state(struct dblock_cmd *cmd,
					unsigned int seq, unsigned int state)
{
	atomic_set(&cmd->state, (seq << DBLOCK_CMD_STATE_BITS) | state);
}

/* dblock_file.c: I/O on the server's file, in the kernel */
int dblock_file_set(struct dblock_dev *dev, const struct dblock_file *f);
void dblock_file_forget(struct dblock_dev *dev);
ssize_t dblock_file_show_path(struct dblock_dev *dev, char *buf);
bool dblock_file_no_data(struct dblock_dev *dev);
blk_status_t dblock_file_rw(struct dblock_dev *dev, struct request *rq);

/* dblock_chan.c: the server's channel */
extern const struct file_operations dblock_chan_fops;

/* dblock_sysfs.c: /sys/block/<name>/dblock/ */
extern const struct attribute_group *dblock_disk_groups[];

#endif /* DBLOCK_H */
