// SPDX-License-Identifier: GPL-2.0
/*
 * dblock: read-only attributes in /sys/block/<name>/dblock/, added with the
 * disk so that udev sees them at once.
 */
#include <linux/blkdev.h>
#include <linux/sysfs.h>

#include "dblock.h"

static struct dblock_dev *dblock_sysfs_dev(struct device *d)
{
	return dev_to_disk(d)->private_data;
}

static const char *const dblock_state_names[] = {
	[DBLOCK_STATE_CREATED]	= "created",
	[DBLOCK_STATE_LIVE]	= "live",
	[DBLOCK_STATE_DEAD]	= "dead",
};

static ssize_t state_show(struct device *d, struct device_attribute *attr,
			  char *buf)
{
	struct dblock_dev *dev = dblock_sysfs_dev(d);
	const char *waiting = READ_ONCE(dev->holding) ? " (waiting for a server)" : "";

	return sysfs_emit(buf, "%s%s\n",
			  dblock_state_names[READ_ONCE(dev->state)], waiting);
}
static DEVICE_ATTR_RO(state);

static ssize_t server_pid_show(struct device *d, struct device_attribute *attr,
			       char *buf)
{
	struct dblock_dev_info info;

	dblock_dev_fill_info(dblock_sysfs_dev(d), &info);
	return sysfs_emit(buf, "%d\n", info.server_pid);
}
static DEVICE_ATTR_RO(server_pid);

static ssize_t recovery_show(struct device *d, struct device_attribute *attr,
			     char *buf)
{
	struct dblock_dev *dev = dblock_sysfs_dev(d);

	return sysfs_emit(buf, "%s\n",
			  READ_ONCE(dev->config.recovery) == DBLOCK_RECOVERY_WAIT ?
			  "wait" : "fail");
}
static DEVICE_ATTR_RO(recovery);

/* The server's description of its backend; an empty line when unset. */
static ssize_t backend_show(struct device *d, struct device_attribute *attr,
			    char *buf)
{
	char text[DBLOCK_BACKEND_MAX];

	dblock_dev_get_backend(dblock_sysfs_dev(d), text);
	return sysfs_emit(buf, "%s\n", text);
}
static DEVICE_ATTR_RO(backend);

/* The file the module reads and writes for the server, as loop/backing_file. */
static ssize_t file_show(struct device *d, struct device_attribute *attr,
			 char *buf)
{
	return dblock_file_show_path(dblock_sysfs_dev(d), buf);
}
static DEVICE_ATTR_RO(file);

/* Plain numbers from the device or its summed counters. */
#define DBLOCK_ATTR_U64(name, expr)					\
static ssize_t name##_show(struct device *d,				\
			   struct device_attribute *attr, char *buf)	\
{									\
	struct dblock_dev_info info;					\
									\
	dblock_dev_fill_info(dblock_sysfs_dev(d), &info);		\
	return sysfs_emit(buf, "%llu\n", (unsigned long long)(expr));	\
}									\
static DEVICE_ATTR_RO(name)

DBLOCK_ATTR_U64(id, info.id);
DBLOCK_ATTR_U64(queues, info.config.nr_queues);
DBLOCK_ATTR_U64(depth, info.config.queue_depth);
DBLOCK_ATTR_U64(max_io_bytes, info.config.max_io_bytes);
DBLOCK_ATTR_U64(timeout_ms, info.config.timeout_ms);
DBLOCK_ATTR_U64(grace_ms, info.config.grace_ms);
DBLOCK_ATTR_U64(reads, info.stats.reads);
DBLOCK_ATTR_U64(writes, info.stats.writes);
DBLOCK_ATTR_U64(flushes, info.stats.flushes);
DBLOCK_ATTR_U64(discards, info.stats.discards);
DBLOCK_ATTR_U64(write_zeroes, info.stats.write_zeroes);
DBLOCK_ATTR_U64(errors, info.stats.errors);
DBLOCK_ATTR_U64(timeouts, info.stats.timeouts);
DBLOCK_ATTR_U64(requeued, info.stats.requeued);
DBLOCK_ATTR_U64(rejected, info.stats.rejected);
DBLOCK_ATTR_U64(file_ios, info.stats.file_ios);

static struct attribute *dblock_disk_attrs[] = {
	&dev_attr_id.attr,
	&dev_attr_state.attr,
	&dev_attr_server_pid.attr,
	&dev_attr_backend.attr,
	&dev_attr_file.attr,
	&dev_attr_queues.attr,
	&dev_attr_depth.attr,
	&dev_attr_max_io_bytes.attr,
	&dev_attr_timeout_ms.attr,
	&dev_attr_recovery.attr,
	&dev_attr_grace_ms.attr,
	&dev_attr_reads.attr,
	&dev_attr_writes.attr,
	&dev_attr_flushes.attr,
	&dev_attr_discards.attr,
	&dev_attr_write_zeroes.attr,
	&dev_attr_errors.attr,
	&dev_attr_timeouts.attr,
	&dev_attr_requeued.attr,
	&dev_attr_rejected.attr,
	&dev_attr_file_ios.attr,
	NULL,
};

static const struct attribute_group dblock_disk_group = {
	.name	= "dblock",
	.attrs	= dblock_disk_attrs,
};

const struct attribute_group *dblock_disk_groups[] = {
	&dblock_disk_group,
	NULL,
};
