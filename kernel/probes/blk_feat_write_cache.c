// SPDX-License-Identifier: GPL-2.0
/* 6.11: the write cache and FUA are queue_limits features. */
#include <linux/blkdev.h>
#include <linux/module.h>

unsigned int dblock_probe(void);
unsigned int dblock_probe(void)
{
	struct queue_limits lim = {
		.features = BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA,
	};

	return (__force unsigned int)lim.features;
}
MODULE_LICENSE("GPL");
