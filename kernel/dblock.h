/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dblock: private definitions shared by the module's files.
 */
#ifndef DBLOCK_H
#define DBLOCK_H

#include <linux/blk-mq.h>
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/spinlock.h>
#include <linux/wait.h>

#include <linux/dblock.h>

#include "dblock_probes.h"

#define DBLOCK_PART_MINORS	16	/* the disk and 15 partitions */
#define DBLOCK_MAX_DEVICES	1024
#define DBLOCK_TIMEOUT		(30 * HZ)

/*
 * One hardware queue.  Requests go from ->queue_rq onto @pending, a server
 * thread takes them off in DBLOCK_IOC_SERVE; only one thread serves a queue
 * at a time (@serving), so the scratch arrays need no lock.
 */
struct dblock_queue {
	spinlock_t		lock;		/* @pending, @no_server, @gone */
	struct list_head	pending;
	bool			no_server;	/* fail new requests at once */
	bool			gone;		/* destroyed: answer GONE */
	wait_queue_head_t	wait;

	unsigned long		serving;	/* bit 0: a thread is in SERVE */
	bool			ready;		/* a thread has entered SERVE */
	struct dblock_dev	*dev;
	unsigned int		index;
	void			*buf;		/* mmapped by the server */
	struct dblock_request	*req_scratch;
	struct dblock_completion *cpl_scratch;
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
};

struct dblock_dev {
	struct dblock_dev_config config;
	u32			id;
	unsigned int		buffer_bytes;

	struct mutex		lock;		/* @state, adding the disk */
	unsigned int		state;		/* DBLOCK_STATE_* */
	bool			add_failed;
	wait_queue_head_t	start_wait;
	atomic_t		nr_ready;

	struct mutex		server_lock;	/* @server */
	struct pid		*server;

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

int dblock_config_validate(const struct dblock_dev_config *cfg);
struct dblock_dev *dblock_dev_create(const struct dblock_dev_config *cfg,
				     u32 id);
void dblock_dev_remove(struct dblock_dev *dev);
void dblock_dev_fill_info(struct dblock_dev *dev, struct dblock_dev_info *info);
bool dblock_dev_is_open(struct dblock_dev *dev);
void dblock_dev_fail_all(struct dblock_dev *dev);
int dblock_dev_start(struct dblock_dev *dev);

long dblock_chan_serve(struct dblock_dev *dev,
		       struct dblock_serve __user *uarg);
extern const struct file_operations dblock_chan_fops;

#endif /* DBLOCK_H */
