// SPDX-License-Identifier: GPL-2.0
/* ~6.14 dropped BLK_MQ_F_SHOULD_MERGE: merging became the default. */
#include <linux/blk-mq.h>
#include <linux/module.h>

unsigned int dblock_probe(void);
unsigned int dblock_probe(void)
{
	return BLK_MQ_F_SHOULD_MERGE;
}
MODULE_LICENSE("GPL");
