// SPDX-License-Identifier: GPL-2.0
/*
 * dblock: device lifecycle, limits and parameters, the server coming and
 * going.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/ctype.h>
#include <linux/fs.h>
#include <linux/log2.h>
#include <linux/math64.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "dblock.h"

static void dblock_grace_expired(struct work_struct *work);

/*
 * Called with disk->open_mutex held, for the disk and its partitions: once
 * destroy has begun, opening fails, like loop's Lo_deleting and zram's claim.
 */
static int dblock_open_disk(struct gendisk *disk)
{
	struct dblock_dev *dev = disk->private_data;

	lockdep_assert_held(&disk->open_mutex);
	return READ_ONCE(dev->removing) ? -ENXIO : 0;
}

#ifdef DBLOCK_HAVE_BLOCK_OPEN_GENDISK
static int dblock_open(struct gendisk *disk, blk_mode_t mode)
{
	return dblock_open_disk(disk);
}
#else
static int dblock_open(struct block_device *bdev, fmode_t mode)
{
	return dblock_open_disk(bdev->bd_disk);
}
#endif

static const struct block_device_operations dblock_bdev_fops = {
	.owner	= THIS_MODULE,
	.open	= dblock_open,
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

static bool dblock_size_valid(u64 size, u32 lbs)
{
	u32 rem;

	/* div_u64_rem(): a plain 64-bit % needs libgcc on 32-bit kernels. */
	div_u64_rem(size, lbs, &rem);
	return size && !rem && size <= MAX_LFS_FILESIZE;
}

/* 0 picks @dflt; otherwise a multiple of @unit no larger than @max. */
static int dblock_bytes_or_default(u32 *val, u32 dflt, u32 unit, u32 max)
{
	if (!*val)
		*val = dflt;
	return *val % unit || *val > max ? -EINVAL : 0;
}

/* Checks a configuration and fills in the defaults its zeroes stand for. */
int dblock_config_validate(struct dblock_dev_config *cfg)
{
	bool discard = cfg->flags & DBLOCK_DEV_DISCARD;
	bool zeroes = cfg->flags & DBLOCK_DEV_WRITE_ZEROES;
	u32 lbs = cfg->logical_block_size;

	if (!dblock_name_valid(cfg->name))
		return -EINVAL;
	if (memchr_inv(cfg->__pad, 0, sizeof(cfg->__pad)) ||
	    memchr_inv(cfg->__reserved, 0, sizeof(cfg->__reserved)))
		return -EINVAL;
	if (cfg->flags & ~DBLOCK_DEV_FLAGS_ALL)
		return -EINVAL;
	if (lbs != 512 && lbs != 1024 && lbs != 2048 && lbs != 4096)
		return -EINVAL;
	if (!dblock_size_valid(cfg->size_bytes, lbs))
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
	if (cfg->recovery > DBLOCK_RECOVERY_WAIT)
		return -EINVAL;
	if (cfg->timeout_ms == DBLOCK_TIMEOUT_DEFAULT)
		cfg->timeout_ms = DBLOCK_TIMEOUT_MS;

	if (!cfg->physical_block_size)
		cfg->physical_block_size = lbs;
	if (!is_power_of_2(cfg->physical_block_size) ||
	    cfg->physical_block_size < lbs || cfg->physical_block_size > SZ_64K)
		return -EINVAL;
	if (cfg->io_opt_bytes % cfg->physical_block_size)
		return -EINVAL;

	if (!discard && (cfg->discard_granularity || cfg->max_discard_bytes))
		return -EINVAL;
	if (!zeroes && cfg->max_write_zeroes_bytes)
		return -EINVAL;
	if (discard) {
		if (dblock_bytes_or_default(&cfg->discard_granularity, lbs, lbs,
					    DBLOCK_MAX_SPECIAL_BYTES) ||
		    !is_power_of_2(cfg->discard_granularity))
			return -EINVAL;
		if (dblock_bytes_or_default(&cfg->max_discard_bytes,
					    DBLOCK_MAX_SPECIAL_BYTES,
					    cfg->discard_granularity,
					    DBLOCK_MAX_SPECIAL_BYTES))
			return -EINVAL;
	}
	if (zeroes && dblock_bytes_or_default(&cfg->max_write_zeroes_bytes,
					      DBLOCK_MAX_SPECIAL_BYTES, lbs,
					      DBLOCK_MAX_SPECIAL_BYTES))
		return -EINVAL;
	return 0;
}

static struct gendisk *dblock_alloc_disk(struct dblock_dev *dev)
{
	const struct dblock_dev_config *cfg = &dev->config;
	bool cache = cfg->flags & DBLOCK_DEV_FLUSH;
	struct gendisk *disk;
#ifdef DBLOCK_HAVE_BLK_MQ_ALLOC_DISK_LIMITS
	struct queue_limits lim = {
		.logical_block_size	= cfg->logical_block_size,
		.physical_block_size	= cfg->physical_block_size,
		.io_opt			= cfg->io_opt_bytes,
		.max_hw_sectors		= cfg->max_io_bytes >> SECTOR_SHIFT,
		/* Data is copied, so any scatter list shape will do. */
		.max_segments		= USHRT_MAX,
		.max_hw_discard_sectors	= cfg->max_discard_bytes >> SECTOR_SHIFT,
		.discard_granularity	= cfg->discard_granularity,
		.max_write_zeroes_sectors = cfg->max_write_zeroes_bytes >>
					    SECTOR_SHIFT,
#ifdef DBLOCK_HAVE_BLK_FEAT_WRITE_CACHE
		.features		= cache ? BLK_FEAT_WRITE_CACHE |
						  BLK_FEAT_FUA : 0,
#endif
	};

	disk = blk_mq_alloc_disk(&dev->tag_set, &lim, dev);
	if (IS_ERR(disk))
		return disk;
#else
	struct request_queue *q;

	disk = blk_mq_alloc_disk(&dev->tag_set, dev);
	if (IS_ERR(disk))
		return disk;
	q = disk->queue;
	blk_queue_logical_block_size(q, cfg->logical_block_size);
	blk_queue_physical_block_size(q, cfg->physical_block_size);
	blk_queue_io_opt(q, cfg->io_opt_bytes);
	blk_queue_max_hw_sectors(q, cfg->max_io_bytes >> SECTOR_SHIFT);
	blk_queue_max_segments(q, USHRT_MAX);
	blk_queue_max_discard_sectors(q, cfg->max_discard_bytes >> SECTOR_SHIFT);
	q->limits.discard_granularity = cfg->discard_granularity;
	blk_queue_max_write_zeroes_sectors(q, cfg->max_write_zeroes_bytes >>
					   SECTOR_SHIFT);
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
		kvfree(dev->queues[i].inflight);
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
		u64_stats_init(&dq->stats.sync);
		dq->dev = dev;
		dq->index = i;
		dq->req_scratch = kvmalloc_array(depth, sizeof(*dq->req_scratch),
						 GFP_KERNEL | __GFP_ZERO);
		dq->inflight = kvcalloc(depth, sizeof(*dq->inflight), GFP_KERNEL);
		if (!dq->req_scratch || !dq->inflight)
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
	spin_lock_init(&dev->file_lock);
	init_waitqueue_head(&dev->start_wait);
	atomic_set(&dev->nr_ready, 0);
	INIT_DELAYED_WORK(&dev->grace_work, dblock_grace_expired);
	atomic64_set(&dev->timeouts, 0);
	atomic64_set(&dev->requeued, 0);
	atomic64_set(&dev->errors, 0);
	atomic64_set(&dev->rejected, 0);
	atomic64_set(&dev->file_ios, 0);

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
	dev->tag_set.timeout = dblock_timeout_jiffies(cfg->timeout_ms);
	dev->tag_set.driver_data = dev;
	/*
	 * Like loop: the server's store does its own ordering, and a single
	 * queue would otherwise get mq-deadline and its lock on every request.
	 * An administrator can still pick a scheduler in sysfs.
	 */
	dev->tag_set.flags = BLK_MQ_F_NO_SCHED_BY_DEFAULT;
#ifdef DBLOCK_HAVE_BLK_MQ_F_SHOULD_MERGE
	dev->tag_set.flags |= BLK_MQ_F_SHOULD_MERGE;
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
		ret = device_add_disk(NULL, dev->disk, dblock_disk_groups);

	if (!ret)
		WRITE_ONCE(dev->state, DBLOCK_STATE_LIVE);
	else if (ret != -EALREADY && ret != -ENODEV)
		dev->add_failed = true;	/* a gendisk is added only once */
	mutex_unlock(&dev->lock);
	return ret;
}

/*
 * Destroy begins: from now on the disk cannot be opened.  Without @force,
 * only if nothing has it open: disk->open_mutex orders this with every open
 * (->open runs and the openers are counted under it), so an opener either
 * is counted here (-EBUSY) or finds @removing set and fails.  The count is
 * that of the whole disk, which every open of a partition also opens; it is
 * 0 before START adds the disk, which, added after this, cannot be opened
 * either.  No dblock lock is held: the last close of the disk writes its
 * dirty pages back under open_mutex, which may take as long as the server.
 */
int dblock_dev_mark_removing(struct dblock_dev *dev, bool force)
{
	struct gendisk *disk = dev->disk;

	if (force) {
		/*
		 * Open or not; not under open_mutex, whose holder may be
		 * waiting for I/O only a forced destroy can fail.
		 */
		WRITE_ONCE(dev->removing, true);
		return 0;
	}
	if (mutex_lock_killable(&disk->open_mutex))
		return -EINTR;
	if (disk_openers(disk)) {
		mutex_unlock(&disk->open_mutex);
		return -EBUSY;
	}
	WRITE_ONCE(dev->removing, true);
	mutex_unlock(&disk->open_mutex);
	return 0;
}

/*
 * Called once, after @dev left the device table: by destroy, after
 * dblock_dev_mark_removing(), or at module exit, when nothing can open the
 * disk.  Without @force the disk is closed; with it, its I/O fails and its
 * users see it vanish.
 */
void dblock_dev_remove(struct dblock_dev *dev, bool force)
{
	unsigned int i;
	bool live;

	mutex_lock(&dev->lock);
	live = dev->state == DBLOCK_STATE_LIVE;
	WRITE_ONCE(dev->state, DBLOCK_STATE_DEAD);
	mutex_unlock(&dev->lock);
	wake_up_all(&dev->start_wait);

	/*
	 * Writeback and I/O in flight are still served by a live server while
	 * del_gendisk() runs; without one, nothing held may wait for it.
	 */
	mutex_lock(&dev->server_lock);
	if (force || !dev->server) {
		dev->holding = false;
		dblock_io_fail_all(dev);
	}
	mutex_unlock(&dev->server_lock);
	cancel_delayed_work_sync(&dev->grace_work);

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

static void dblock_grace_expired(struct work_struct *work)
{
	struct dblock_dev *dev = container_of(to_delayed_work(work),
					      struct dblock_dev, grace_work);

	mutex_lock(&dev->server_lock);
	if (dev->holding) {
		pr_warn("%s: no server came back in %u ms: failing its I/O\n",
			dev->config.name, READ_ONCE(dev->config.grace_ms));
		WRITE_ONCE(dev->holding, false);
		dblock_io_fail_all(dev);
	}
	mutex_unlock(&dev->server_lock);
}

/* A server opened the channel; called with @server_lock held. */
void dblock_dev_server_attach(struct dblock_dev *dev)
{
	unsigned int i;

	lockdep_assert_held(&dev->server_lock);
	if (dev->holding)
		pr_info("%s: a new server took over\n", dev->config.name);
	/* It describes its backend itself, or not at all. */
	memset(dev->backend, 0, sizeof(dev->backend));
	WRITE_ONCE(dev->holding, false);
	for (i = 0; i < dev->config.nr_queues; i++) {
		spin_lock(&dev->queues[i].lock);
		dev->queues[i].no_server = false;
		spin_unlock(&dev->queues[i].lock);
		/* Held requests are waiting for it. */
		wake_up(&dev->queues[i].wait);
	}
}

/* DBLOCK_IOC_SET_BACKEND; see struct dblock_backend for what is valid. */
int dblock_dev_set_backend(struct dblock_dev *dev,
			   const struct dblock_backend *b)
{
	size_t len = strnlen(b->text, sizeof(b->text));
	size_t i;

	if (len == sizeof(b->text) ||
	    memchr_inv(b->text + len, 0, sizeof(b->text) - len) ||
	    memchr_inv(b->__reserved, 0, sizeof(b->__reserved)))
		return -EINVAL;
	for (i = 0; i < len; i++) {
		u8 c = b->text[i];

		if (c < 0x20 || c == 0x7f)
			return -EINVAL;
	}

	mutex_lock(&dev->server_lock);
	memcpy(dev->backend, b->text, sizeof(dev->backend));
	mutex_unlock(&dev->server_lock);
	return 0;
}

void dblock_dev_get_backend(struct dblock_dev *dev,
			    char text[DBLOCK_BACKEND_MAX])
{
	mutex_lock(&dev->server_lock);
	memcpy(text, dev->backend, DBLOCK_BACKEND_MAX);
	mutex_unlock(&dev->server_lock);
}

/*
 * The server closed the channel: it exited or died, and none of its threads
 * is in DBLOCK_IOC_SERVE.  Called with @server_lock held.
 */
void dblock_dev_server_detach(struct dblock_dev *dev)
{
	u32 grace = READ_ONCE(dev->config.grace_ms);
	unsigned int i;

	lockdep_assert_held(&dev->server_lock);
	dblock_file_forget(dev);
	if (READ_ONCE(dev->state) == DBLOCK_STATE_LIVE &&
	    READ_ONCE(dev->config.recovery) == DBLOCK_RECOVERY_WAIT) {
		WRITE_ONCE(dev->holding, true);
		dblock_io_requeue_fetched(dev);
		pr_info("%s: server gone, holding I/O for %s\n", dev->config.name,
			grace ? "its grace period" : "a new server");
		if (grace)
			mod_delayed_work(system_wq, &dev->grace_work,
					 msecs_to_jiffies(grace));
		return;
	}
	dblock_io_fail_all(dev);
	if (READ_ONCE(dev->state) == DBLOCK_STATE_CREATED) {
		/* START must wait for the next server's threads. */
		for (i = 0; i < dev->config.nr_queues; i++)
			dev->queues[i].ready = false;
		atomic_set(&dev->nr_ready, 0);
	}
}

/* Resizes the disk; the servers learn it from DBLOCK_SERVE_RESIZED. */
static void dblock_dev_resize(struct dblock_dev *dev, u64 size)
{
	unsigned int i;

	lockdep_assert_held(&dev->lock);
	WRITE_ONCE(dev->config.size_bytes, size);
	/* Before the new size lets requests past the old end. */
	for (i = 0; i < dev->config.nr_queues; i++) {
		spin_lock(&dev->queues[i].lock);
		dev->queues[i].resized = true;
		spin_unlock(&dev->queues[i].lock);
		wake_up(&dev->queues[i].wait);
	}
	if (dev->state == DBLOCK_STATE_LIVE)
		set_capacity_and_notify(dev->disk, size >> SECTOR_SHIFT);
	else
		set_capacity(dev->disk, size >> SECTOR_SHIFT);
}

int dblock_dev_set_params(struct dblock_dev *dev,
			  const struct dblock_ctl_set_params *p)
{
	u32 timeout = p->timeout_ms;

	if (p->mask & ~DBLOCK_SET_ALL ||
	    memchr_inv(p->__pad, 0, sizeof(p->__pad)) ||
	    memchr_inv(p->__reserved, 0, sizeof(p->__reserved)))
		return -EINVAL;
	if (p->mask & DBLOCK_SET_SIZE &&
	    !dblock_size_valid(p->size_bytes, dev->config.logical_block_size))
		return -EINVAL;
	if (p->mask & DBLOCK_SET_RECOVERY && p->recovery > DBLOCK_RECOVERY_WAIT)
		return -EINVAL;
	if (timeout == DBLOCK_TIMEOUT_DEFAULT)
		timeout = DBLOCK_TIMEOUT_MS;

	if (mutex_lock_interruptible(&dev->lock))
		return -EINTR;
	if (dev->state == DBLOCK_STATE_DEAD) {
		mutex_unlock(&dev->lock);
		return -ENODEV;
	}
	if (p->mask & DBLOCK_SET_SIZE && p->size_bytes != dev->config.size_bytes)
		dblock_dev_resize(dev, p->size_bytes);
	if (p->mask & DBLOCK_SET_TIMEOUT) {
		WRITE_ONCE(dev->config.timeout_ms, timeout);
		blk_queue_rq_timeout(dev->disk->queue,
				     dblock_timeout_jiffies(timeout));
	}
	mutex_unlock(&dev->lock);

	if (p->mask & DBLOCK_SET_RECOVERY) {
		mutex_lock(&dev->server_lock);
		WRITE_ONCE(dev->config.recovery, p->recovery);
		WRITE_ONCE(dev->config.grace_ms, p->grace_ms);
		if (dev->holding && p->recovery == DBLOCK_RECOVERY_FAIL) {
			WRITE_ONCE(dev->holding, false);
			dblock_io_fail_all(dev);
		} else if (dev->holding) {
			if (p->grace_ms)
				mod_delayed_work(system_wq, &dev->grace_work,
						 msecs_to_jiffies(p->grace_ms));
			else
				cancel_delayed_work(&dev->grace_work);
		}
		mutex_unlock(&dev->server_lock);
	}
	return 0;
}

static void dblock_sum_stats(struct dblock_dev *dev, struct dblock_dev_stats *st)
{
	unsigned int i;

	for (i = 0; i < dev->config.nr_queues; i++) {
		struct dblock_queue_stats *qs = &dev->queues[i].stats;
		unsigned int start;
		u64 v[5];

		do {
			start = u64_stats_fetch_begin(&qs->sync);
			v[0] = u64_stats_read(&qs->reads);
			v[1] = u64_stats_read(&qs->writes);
			v[2] = u64_stats_read(&qs->flushes);
			v[3] = u64_stats_read(&qs->discards);
			v[4] = u64_stats_read(&qs->write_zeroes);
		} while (u64_stats_fetch_retry(&qs->sync, start));
		st->reads += v[0];
		st->writes += v[1];
		st->flushes += v[2];
		st->discards += v[3];
		st->write_zeroes += v[4];
	}
	st->errors = atomic64_read(&dev->errors);
	st->timeouts = atomic64_read(&dev->timeouts);
	st->requeued = atomic64_read(&dev->requeued);
	st->rejected = atomic64_read(&dev->rejected);
	st->file_ios = atomic64_read(&dev->file_ios);
}

void dblock_dev_fill_info(struct dblock_dev *dev, struct dblock_dev_info *info)
{
	memset(info, 0, sizeof(*info));
	info->config = dev->config;
	info->id = dev->id;
	info->state = READ_ONCE(dev->state);
	info->buffer_bytes = dev->buffer_bytes;
	info->features = DBLOCK_FEAT_SUPPORTED;
	if (info->state == DBLOCK_STATE_LIVE) {
		info->disk_major = MAJOR(disk_devt(dev->disk));
		info->disk_minor = MINOR(disk_devt(dev->disk));
	}
	mutex_lock(&dev->server_lock);
	if (dev->server)
		info->server_pid = pid_vnr(dev->server);
	mutex_unlock(&dev->server_lock);
	dblock_sum_stats(dev, &info->stats);
}
