// SPDX-License-Identifier: GPL-2.0
/* 6.5: block_device_operations.open takes the gendisk and a blk_mode_t. */
#include <linux/blkdev.h>
#include <linux/build_bug.h>
#include <linux/module.h>

int dblock_probe(const struct block_device_operations *fops);
int dblock_probe(const struct block_device_operations *fops)
{
	static_assert(__builtin_types_compatible_p(typeof(fops->open),
						   int (*)(struct gendisk *, blk_mode_t)));
	return 0;
}
MODULE_LICENSE("GPL");
