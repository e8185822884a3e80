// SPDX-License-Identifier: GPL-2.0
/*
 * dblock: device lifecycle and the blk-mq side of the I/O path.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/ctype.h>
#include <linux/fs.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "dblock.h"

static const struct block_device_operations dblock_bdev_fops = {
	.owner = THIS_MODULE,
};

static bool dblock_name_valid(const char *name)
{
	size_t len = strnlen(name, DBLOCK_NAME_MAX);
	size_t i;

	if (len == 0 || len == DBLOCK_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum(name[i]) && name[i] != '_' && name[i] != '-')
			return false;
	/* These would collide with the module's own nodes in /dev. */
	return strcmp(name, "dblock") && strcmp(name, "dblockctl");
}

static bool dblock_zeroed(const void *p, size_t len)
{
	return !memchr_inv(p, 0, len);
}

int dblock_config_validate(const struct dblock_dev_config *cfg)
{
	u32 lbs = cfg->logical_block_size;

	if (!dblock_name_valid(cfg->name))
		return -EINVAL;
	if (cfg->__pad || !dblock_zeroed(cfg->__reserved, sizeof(cfg->__reserved)))
		return -EINVAL;
	if (cfg->flags & ~DBLOCK_DEV_FLAGS_ALL)
		return -EINVAL;
	if (lbs != 512 && lbs != 1024 && lbs != 2048 && lbs != 4096)
		return -EINVAL;
	if (!cfg->size_bytes || cfg->size_bytes % lbs ||
	    cfg->size_bytes > MAX_LFS_FILESIZE)
		return -EINVAL;
	if (cfg->max_io_bytes < DBLOCK_MIN_IO_BYTES ||
	    cfg->max_io_bytes > DBLOCK_MAX_IO_BYTES ||
	    cfg->max_io_bytes % DBLOCK_MIN_IO_BYTES ||
	    cfg->max_io_bytes % lbs)
		return -EINVAL;
	if (!cfg->nr_queues || cfg->nr_queues > DBLOCK_MAX_QUEUES)
		return -EINVAL;
	if (!cfg->queue_depth || cfg->queue_depth > DBLOCK_MAX_QUEUE_DEPTH)
		return -EINVAL;
	if ((u64)cfg->queue_depth * cfg->max_io_bytes > DBLOCK_MAX_BUFFER_BYTES)
		return -EINVAL;
	return 0;
}

static void dblock_cmd_set_state(struct dblock_cmd *cmd, unsigned int seq,
				 unsigned int state)
{
	atomic_set(&cmd->state, (seq << DBLOCK_CMD_STATE_BITS) | state);
}

static blk_status_t dblock_queue_rq(struct blk_mq_hw_ctx *hctx,
				    const struct blk_mq_queue_data *bd)
{
	struct dblock_queue *dq = hctx->driver_data;
	struct request *rq = bd->rq;
	struct dblock_cmd *cmd = blk_mq_rq_to_pdu(rq);
	unsigned int seq;

	switch (req_op(rq)) {
	case REQ_OP_READ:
	case REQ_OP_FLUSH:
		break;
	case REQ_OP_WRITE:
		if (dq->dev->config.flags & DBLOCK_DEV_READ_ONLY)
			return BLK_STS_IOERR;
		break;
	default:
		return BLK_STS_NOTSUPP;
	}
	if (unlikely(blk_rq_bytes(rq) > dq->dev->config.max_io_bytes))
		return BLK_STS_IOERR;

	blk_mq_start_request(rq);

	spin_lock(&dq->lock);
	if (unlikely(dq->no_server || dq->gone)) {
		spin_unlock(&dq->lock);
		return BLK_STS_IOERR;
	}
	seq = atomic_read(&cmd->state) >> DBLOCK_CMD_STATE_BITS;
	dblock_cmd_set_state(cmd, seq, DBLOCK_CMD_QUEUED);
	list_add_tail(&cmd->node, &dq->pending);
	spin_unlock(&dq->lock);

	/* With more requests to come, ->commit_rqs wakes the server once. */
	if (bd->last && wq_has_sleeper(&dq->wait))
		wake_up(&dq->wait);
	return BLK_STS_OK;
}

static void dblock_commit_rqs(struct blk_mq_hw_ctx *hctx)
{
	struct dblock_queue *dq = hctx->driver_data;

	if (wq_has_sleeper(&dq->wait))
		wake_up(&dq->wait);
}

static void dblock_complete_rq(struct request *rq)
{
	struct dblock_cmd *cmd = blk_mq_rq_to_pdu(rq);

	blk_mq_end_request(rq, cmd->status);
}

static void dblock_cmd_abort(struct request *rq, blk_status_t status)
{
	struct dblock_cmd *cmd = blk_mq_rq_to_pdu(rq);

	cmd->status = status;
	blk_mq_complete_request(rq);
}

static enum blk_eh_timer_return dblock_timeout(struct request *rq)
{
	struct dblock_queue *dq = rq->mq_hctx->driver_data;
	struct dblock_cmd *cmd = blk_mq_rq_to_pdu(rq);
	unsigned int old, seq;

	spin_lock(&dq->lock);
	old = atomic_read(&cmd->state);
	seq = old >> DBLOCK_CMD_STATE_BITS;
	switch (old & DBLOCK_CMD_STATE_MASK) {
	case DBLOCK_CMD_QUEUED:
		list_del_init(&cmd->node);
		dblock_cmd_set_state(cmd, seq, DBLOCK_CMD_DONE);
		break;
	case DBLOCK_CMD_FETCHED:
		if (atomic_cmpxchg(&cmd->state, old,
				   (seq << DBLOCK_CMD_STATE_BITS) |
				   DBLOCK_CMD_DONE) == old)
			break;
		fallthrough;
	case DBLOCK_CMD_FETCHING:
		/* The server is copying it out right now: look again later. */
		spin_unlock(&dq->lock);
		return BLK_EH_RESET_TIMER;
	default:
		/* Whoever claimed it completes it. */
		spin_unlock(&dq->lock);
		return BLK_EH_DONE;
	}
	spin_unlock(&dq->lock);

	pr_warn_ratelimited("%s: request at sector %llu timed out on queue %u\n",
			    dq->dev->config.name, blk_rq_pos(rq), dq->index);
	dblock_cmd_abort(rq, BLK_STS_IOERR);
	return BLK_EH_DONE;
}

static int dblock_init_hctx(struct blk_mq_hw_ctx *hctx, void *data,
			    unsigned int index)
{
	struct dblock_dev *dev = data;

	hctx->driver_data = &dev->queues[index];
	return 0;
}

static int dblock_init_request(struct blk_mq_tag_set *set, struct request *rq,
			       unsigned int hctx_idx, unsigned int numa_node)
{
	struct dblock_cmd *cmd = blk_mq_rq_to_pdu(rq);

	INIT_LIST_HEAD(&cmd->node);
	atomic_set(&cmd->state, DBLOCK_CMD_IDLE);
	return 0;
}

static const struct blk_mq_ops dblock_mq_ops = {
	.queue_rq	= dblock_queue_rq,
	.commit_rqs	= dblock_commit_rqs,
	.complete	= dblock_complete_rq,
	.timeout	= dblock_timeout,
	.init_hctx	= dblock_init_hctx,
	.init_request	= dblock_init_request,
};

static bool dblock_fail_fetched(struct request *rq, void *data)
{
	struct dblock_cmd *cmd = blk_mq_rq_to_pdu(rq);
	unsigned int old = atomic_read(&cmd->state);
	unsigned int seq = old >> DBLOCK_CMD_STATE_BITS;

	if ((old & DBLOCK_CMD_STATE_MASK) == DBLOCK_CMD_FETCHED &&
	    atomic_cmpxchg(&cmd->state, old, (seq << DBLOCK_CMD_STATE_BITS) |
			   DBLOCK_CMD_DONE) == old)
		dblock_cmd_abort(rq, BLK_STS_IOERR);
	return true;
}

/*
 * The server closed its channel (exited or died): nobody will answer what
 * it took or what is queued, so fail all of it now rather than at timeout,
 * and fail new requests until a server opens the channel again.
 */
void dblock_dev_fail_all(struct dblock_dev *dev)
{
	unsigned int i;

	for (i = 0; i < dev->config.nr_queues; i++) {
		struct dblock_queue *dq = &dev->queues[i];
		struct dblock_cmd *cmd, *next;
		LIST_HEAD(failed);

		spin_lock(&dq->lock);
		dq->no_server = true;
		list_splice_init(&dq->pending, &failed);
		list_for_each_entry(cmd, &failed, node)
			dblock_cmd_set_state(cmd, atomic_read(&cmd->state) >>
					     DBLOCK_CMD_STATE_BITS,
					     DBLOCK_CMD_DONE);
		spin_unlock(&dq->lock);

		list_for_each_entry_safe(cmd, next, &failed, node) {
			list_del_init(&cmd->node);
			dblock_cmd_abort(blk_mq_rq_from_pdu(cmd),
					 BLK_STS_IOERR);
		}
	}
	blk_mq_tagset_busy_iter(&dev->tag_set, dblock_fail_fetched, NULL);
}

static struct gendisk *dblock_alloc_disk(struct dblock_dev *dev)
{
	const struct dblock_dev_config *cfg = &dev->config;
	bool cache = cfg->flags & DBLOCK_DEV_FLUSH;
	struct gendisk *disk;
#ifdef DBLOCK_HAVE_BLK_MQ_ALLOC_DISK_LIMITS
	struct queue_limits lim = {
		.logical_block_size	= cfg->logical_block_size,
		.physical_block_size	= cfg->logical_block_size,
		.max_hw_sectors		= cfg->max_io_bytes >> SECTOR_SHIFT,
		/* Data is copied, so any scatter list shape will do. */
		.max_segments		= USHRT_MAX,
#ifdef DBLOCK_HAVE_BLK_FEAT_WRITE_CACHE
		.features		= cache ? BLK_FEAT_WRITE_CACHE |
						  BLK_FEAT_FUA : 0,
#endif
	};

	disk = blk_mq_alloc_disk(&dev->tag_set, &lim, dev);
	if (IS_ERR(disk))
		return disk;
#else
	disk = blk_mq_alloc_disk(&dev->tag_set, dev);
	if (IS_ERR(disk))
		return disk;
	blk_queue_logical_block_size(disk->queue, cfg->logical_block_size);
	blk_queue_physical_block_size(disk->queue, cfg->logical_block_size);
	blk_queue_max_hw_sectors(disk->queue, cfg->max_io_bytes >> SECTOR_SHIFT);
	blk_queue_max_segments(disk->queue, USHRT_MAX);
#endif
#ifndef DBLOCK_HAVE_BLK_FEAT_WRITE_CACHE
	blk_queue_write_cache(disk->queue, cache, cache);
#endif
	disk->major = dblock_major;
	disk->first_minor = dev->id * DBLOCK_PART_MINORS;
	disk->minors = DBLOCK_PART_MINORS;
	disk->fops = &dblock_bdev_fops;
	disk->private_data = dev;
	strscpy(disk->disk_name, cfg->name, DISK_NAME_LEN);
	set_capacity(disk, cfg->size_bytes >> SECTOR_SHIFT);
	if (cfg->flags & DBLOCK_DEV_READ_ONLY)
		set_disk_ro(disk, true);
	return disk;
}

static void dblock_free_queues(struct dblock_dev *dev)
{
	unsigned int i;

	if (!dev->queues)
		return;
	for (i = 0; i < dev->config.nr_queues; i++) {
		vfree(dev->queues[i].buf);
		kvfree(dev->queues[i].req_scratch);
		kvfree(dev->queues[i].cpl_scratch);
	}
	kfree(dev->queues);
}

static int dblock_alloc_queues(struct dblock_dev *dev)
{
	unsigned int depth = dev->config.queue_depth;
	unsigned int i;

	dev->queues = kcalloc(dev->config.nr_queues, sizeof(*dev->queues),
			      GFP_KERNEL);
	if (!dev->queues)
		return -ENOMEM;
	for (i = 0; i < dev->config.nr_queues; i++) {
		struct dblock_queue *dq = &dev->queues[i];

		spin_lock_init(&dq->lock);
		INIT_LIST_HEAD(&dq->pending);
		init_waitqueue_head(&dq->wait);
		dq->no_server = true;
		dq->dev = dev;
		dq->index = i;
		dq->buf = vmalloc_user(dev->buffer_bytes);
		dq->req_scratch = kvmalloc_array(depth, sizeof(*dq->req_scratch),
						 GFP_KERNEL | __GFP_ZERO);
		dq->cpl_scratch = kvmalloc_array(depth, sizeof(*dq->cpl_scratch),
						 GFP_KERNEL);
		if (!dq->buf || !dq->req_scratch || !dq->cpl_scratch)
			return -ENOMEM;
	}
	return 0;
}

/* The last reference to the channel is gone: nothing can reach @dev now. */
static void dblock_dev_release(struct device *d)
{
	struct dblock_dev *dev = container_of(d, struct dblock_dev, cdev_dev);

	if (dev->disk)
		put_disk(dev->disk);
	if (dev->tag_set.tags)
		blk_mq_free_tag_set(&dev->tag_set);
	dblock_free_queues(dev);
	kfree(dev);
}

struct dblock_dev *dblock_dev_create(const struct dblock_dev_config *cfg,
				     u32 id)
{
	struct dblock_dev *dev;
	int ret;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return ERR_PTR(-ENOMEM);
	dev->config = *cfg;
	dev->id = id;
	dev->buffer_bytes = PAGE_ALIGN(cfg->queue_depth * cfg->max_io_bytes);
	dev->state = DBLOCK_STATE_CREATED;
	mutex_init(&dev->lock);
	mutex_init(&dev->server_lock);
	init_waitqueue_head(&dev->start_wait);
	atomic_set(&dev->nr_ready, 0);

	/* From here on dblock_dev_release() undoes whatever was set up. */
	device_initialize(&dev->cdev_dev);
	dev->cdev_dev.class = &dblock_chan_class;
	dev->cdev_dev.devt = MKDEV(MAJOR(dblock_chan_devt), id);
	dev->cdev_dev.release = dblock_dev_release;
	ret = dev_set_name(&dev->cdev_dev, "dblock!%u", id);
	if (ret)
		goto out_put_dev;

	ret = dblock_alloc_queues(dev);
	if (ret)
		goto out_put_dev;

	dev->tag_set.ops = &dblock_mq_ops;
	dev->tag_set.nr_hw_queues = cfg->nr_queues;
	dev->tag_set.queue_depth = cfg->queue_depth;
	dev->tag_set.numa_node = NUMA_NO_NODE;
	dev->tag_set.cmd_size = sizeof(struct dblock_cmd);
	dev->tag_set.timeout = DBLOCK_TIMEOUT;
	dev->tag_set.driver_data = dev;
#ifdef DBLOCK_HAVE_BLK_MQ_F_SHOULD_MERGE
	dev->tag_set.flags = BLK_MQ_F_SHOULD_MERGE;
#endif
	ret = blk_mq_alloc_tag_set(&dev->tag_set);
	if (ret) {
		dev->tag_set.tags = NULL;
		goto out_put_dev;
	}

	dev->disk = dblock_alloc_disk(dev);
	if (IS_ERR(dev->disk)) {
		ret = PTR_ERR(dev->disk);
		dev->disk = NULL;
		goto out_put_dev;
	}

	cdev_init(&dev->cdev, &dblock_chan_fops);
	dev->cdev.owner = THIS_MODULE;
	ret = cdev_device_add(&dev->cdev, &dev->cdev_dev);
	if (ret)
		goto out_put_dev;
	return dev;

out_put_dev:
	put_device(&dev->cdev_dev);
	return ERR_PTR(ret);
}

/*
 * Waits until every queue has a thread in DBLOCK_IOC_SERVE, then adds the
 * disk: add_disk() reads the partition table, which only a server answers.
 */
int dblock_dev_start(struct dblock_dev *dev)
{
	unsigned int nr_queues = dev->config.nr_queues;
	int ret;

	ret = wait_event_interruptible(dev->start_wait,
				       atomic_read(&dev->nr_ready) == nr_queues ||
				       READ_ONCE(dev->state) != DBLOCK_STATE_CREATED);
	if (ret)
		return -EINTR;

	mutex_lock(&dev->lock);
	if (dev->state == DBLOCK_STATE_LIVE)
		ret = -EALREADY;
	else if (dev->state == DBLOCK_STATE_DEAD)
		ret = -ENODEV;
	else if (dev->add_failed)
		ret = -EIO;
	else
		ret = add_disk(dev->disk);

	if (!ret)
		WRITE_ONCE(dev->state, DBLOCK_STATE_LIVE);
	else if (ret != -EALREADY && ret != -ENODEV)
		dev->add_failed = true;	/* a gendisk is added only once */
	mutex_unlock(&dev->lock);
	return ret;
}

bool dblock_dev_is_open(struct dblock_dev *dev)
{
	return READ_ONCE(dev->state) == DBLOCK_STATE_LIVE &&
	       disk_openers(dev->disk);
}

/* Called once, after @dev left the device table. */
void dblock_dev_remove(struct dblock_dev *dev)
{
	unsigned int i;
	bool live;

	mutex_lock(&dev->lock);
	live = dev->state == DBLOCK_STATE_LIVE;
	WRITE_ONCE(dev->state, DBLOCK_STATE_DEAD);
	mutex_unlock(&dev->lock);
	wake_up_all(&dev->start_wait);

	/* Writeback and I/O in flight are still served while this runs. */
	if (live)
		del_gendisk(dev->disk);

	for (i = 0; i < dev->config.nr_queues; i++) {
		struct dblock_queue *dq = &dev->queues[i];

		spin_lock(&dq->lock);
		dq->gone = true;
		spin_unlock(&dq->lock);
		wake_up_all(&dq->wait);
	}
	cdev_device_del(&dev->cdev, &dev->cdev_dev);
	put_device(&dev->cdev_dev);
}

void dblock_dev_fill_info(struct dblock_dev *dev, struct dblock_dev_info *info)
{
	memset(info, 0, sizeof(*info));
	info->config = dev->config;
	info->id = dev->id;
	info->state = READ_ONCE(dev->state);
	info->buffer_bytes = dev->buffer_bytes;
	if (info->state == DBLOCK_STATE_LIVE) {
		info->disk_major = MAJOR(disk_devt(dev->disk));
		info->disk_minor = MINOR(disk_devt(dev->disk));
	}
	mutex_lock(&dev->server_lock);
	if (dev->server)
		info->server_pid = pid_vnr(dev->server);
	mutex_unlock(&dev->server_lock);
}
