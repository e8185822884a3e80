// SPDX-License-Identifier: GPL-2.0
/* 6.6: kiocb_start_write() and kiocb_end_write(): an async write's freeze protection. */
#include <linux/fs.h>
#include <linux/module.h>

void dblock_probe(struct kiocb *iocb);
void dblock_probe(struct kiocb *iocb)
{
	kiocb_start_write(iocb);
	kiocb_end_write(iocb);
}
MODULE_LICENSE("GPL");
