// SPDX-License-Identifier: GPL-2.0
/*
 * dblock: reads and writes done by the kernel on a file the server names
 * (DBLOCK_IOC_SET_FILE), for the requests it answers with DBLOCK_CPL_FILE:
 * the request's pages go to the file as they would from a loop device,
 * without a copy through the server's buffer.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/uio.h>

#include "dblock.h"

/* The kinds of file the kernel does I/O on for a device, and how opened. */
static int dblock_file_check(struct dblock_dev *dev, struct file *file)
{
	struct inode *inode = file->f_mapping->host;
	bool write = !(dev->config.flags & DBLOCK_DEV_READ_ONLY);

	if (!(file->f_mode & FMODE_READ) || (write && !(file->f_mode & FMODE_WRITE)))
		return -EBADF;
	if (!S_ISREG(inode->i_mode) && !S_ISBLK(inode->i_mode))
		return -EINVAL;
	if (!file->f_op->read_iter || (write && !file->f_op->write_iter) ||
	    (file->f_flags & O_APPEND))
		return -EINVAL;
	/* Its own disk, or one of its partitions, would serve itself. */
	if (S_ISBLK(inode->i_mode) && I_BDEV(inode)->bd_disk == dev->disk)
		return -EINVAL;
	return 0;
}

/* Swaps in @file (or none) and drops the reference on the old one. */
static void dblock_file_swap(struct dblock_dev *dev, struct file *file,
			     u64 offset, u32 flags)
{
	struct file *old;

	spin_lock(&dev->file_lock);
	old = dev->file;
	dev->file = file;
	dev->file_offset = offset;
	dev->file_flags = flags;
	spin_unlock(&dev->file_lock);
	if (old)
		fput(old);
}

/* DBLOCK_IOC_SET_FILE; see struct dblock_file for what is valid. */
int dblock_file_set(struct dblock_dev *dev, const struct dblock_file *f)
{
	struct file *file;
	int ret;

	if (f->flags & ~DBLOCK_FILE_NO_WRITE_DATA ||
	    f->offset % dev->config.logical_block_size ||
	    f->offset > (u64)LLONG_MAX - dev->config.size_bytes ||
	    memchr_inv(f->__reserved, 0, sizeof(f->__reserved)))
		return -EINVAL;
	if (f->fd == -1) {
		if (f->flags || f->offset)
			return -EINVAL;
		dblock_file_swap(dev, NULL, 0, 0);
		return 0;
	}
	if (f->fd < 0)
		return -EBADF;
	file = fget(f->fd);
	if (!file)
		return -EBADF;
	ret = dblock_file_check(dev, file);
	if (ret) {
		fput(file);
		return ret;
	}
	dblock_file_swap(dev, file, f->offset, f->flags);
	return 0;
}

/* The server closed the channel: its file is no longer the device's. */
void dblock_file_forget(struct dblock_dev *dev)
{
	dblock_file_swap(dev, NULL, 0, 0);
}

/* The file's path, for sysfs; an empty line when there is none. */
ssize_t dblock_file_show_path(struct dblock_dev *dev, char *buf)
{
	char *path = NULL;
	ssize_t len;

	/* As loop's backing_file: d_path() does not sleep. */
	spin_lock(&dev->file_lock);
	if (dev->file)
		path = file_path(dev->file, buf, PAGE_SIZE - 1);
	spin_unlock(&dev->file_lock);
	if (!path)
		return sysfs_emit(buf, "\n");
	if (IS_ERR(path))
		return PTR_ERR(path);
	len = strlen(path);
	memmove(buf, path, len);
	buf[len++] = '\n';
	buf[len] = '\0';
	return len;
}

/* Whether writes are fetched without their data now. */
bool dblock_file_no_data(struct dblock_dev *dev)
{
	return READ_ONCE(dev->file_flags) & DBLOCK_FILE_NO_WRITE_DATA;
}

/* Zeroes what a read the file ended short of left unfilled. */
static void dblock_file_zero_tail(struct request *rq, unsigned int filled)
{
	struct req_iterator iter;
	struct bio_vec bv;
	unsigned int pos = 0;

	rq_for_each_segment(bv, rq, iter) {
		if (pos + bv.bv_len > filled) {
			unsigned int skip = filled > pos ? filled - pos : 0;

			memzero_page(bv.bv_page, bv.bv_offset + skip,
				     bv.bv_len - skip);
			flush_dcache_page(bv.bv_page);
		}
		pos += bv.bv_len;
	}
}

/* The submitter and the I/O's completion each drop a reference. */
static void dblock_file_put(struct dblock_cmd *cmd)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct dblock_queue *dq = rq->mq_hctx->driver_data;
	long ret;

	if (!atomic_dec_and_test(&cmd->file_ref))
		return;
	ret = cmd->file_ret;
	kfree(cmd->bvec);
	cmd->bvec = NULL;
#ifdef DBLOCK_HAVE_KIOCB_START_WRITE
	if (req_op(rq) == REQ_OP_WRITE)
		kiocb_end_write(&cmd->iocb);
#endif
	fput(cmd->iocb.ki_filp);

	if (ret >= 0 && ret < blk_rq_bytes(rq) && req_op(rq) == REQ_OP_READ) {
		/* Past the end of the file: zeroes, as from a loop device. */
		dblock_file_zero_tail(rq, ret);
		ret = blk_rq_bytes(rq);
	}
	if (ret == blk_rq_bytes(rq)) {
		cmd->status = BLK_STS_OK;
	} else {
		cmd->status = ret < 0 ? errno_to_blk_status(ret) : BLK_STS_IOERR;
		atomic64_inc(&dq->dev->errors);
		pr_warn_ratelimited("%s: %s at sector %llu on the server's file: %ld\n",
				    dq->dev->config.name,
				    req_op(rq) == REQ_OP_READ ? "read" : "write",
				    blk_rq_pos(rq), ret);
	}
	blk_mq_complete_request(rq);
}

static void dblock_file_done(struct kiocb *iocb, long ret)
{
	struct dblock_cmd *cmd = container_of(iocb, struct dblock_cmd, iocb);

	cmd->file_ret = ret;
	dblock_file_put(cmd);
}

/*
 * Starts @rq, a read or a write the server answered with DBLOCK_CPL_FILE, on
 * the server's file.  BLK_STS_OK: the request ends when the I/O does; else
 * it was not started and the caller ends it with the status returned.
 */
blk_status_t dblock_file_rw(struct dblock_dev *dev, struct request *rq)
{
	struct dblock_cmd *cmd = blk_mq_rq_to_pdu(rq);
	unsigned int dir = req_op(rq) == REQ_OP_WRITE ? ITER_SOURCE : ITER_DEST;
	unsigned int nr_bvec = 0;
	struct req_iterator iter;
	struct iov_iter it;
	struct bio_vec bv;
	struct file *file;
	u64 offset;
	ssize_t ret;

	if (req_op(rq) != REQ_OP_READ && req_op(rq) != REQ_OP_WRITE) {
		pr_warn_ratelimited("%s: only reads and writes can be answered with the file\n",
				    dev->config.name);
		return BLK_STS_IOERR;
	}
	spin_lock(&dev->file_lock);
	file = dev->file;
	if (file)
		get_file(file);
	offset = dev->file_offset;
	spin_unlock(&dev->file_lock);
	if (!file) {
		pr_warn_ratelimited("%s: a request answered with the file, but no file is set\n",
				    dev->config.name);
		return BLK_STS_IOERR;
	}

	rq_for_each_bvec(bv, rq, iter)
		nr_bvec++;
	if (rq->bio != rq->biotail) {
		struct bio_vec *b;

		/* Bios may start inside a bvec: copy the request's view. */
		cmd->bvec = kmalloc_array(nr_bvec, sizeof(*cmd->bvec), GFP_NOIO);
		if (!cmd->bvec) {
			fput(file);
			return BLK_STS_IOERR;
		}
		b = cmd->bvec;
		rq_for_each_bvec(bv, rq, iter) {
			*b = bv;
			b++;
		}
		iov_iter_bvec(&it, dir, cmd->bvec, nr_bvec, blk_rq_bytes(rq));
	} else {
		iov_iter_bvec(&it, dir, __bvec_iter_bvec(rq->bio->bi_io_vec,
							 rq->bio->bi_iter),
			      nr_bvec, blk_rq_bytes(rq));
		it.iov_offset = rq->bio->bi_iter.bi_bvec_done;
	}

	init_sync_kiocb(&cmd->iocb, file);
	cmd->iocb.ki_pos = offset + ((u64)blk_rq_pos(rq) << SECTOR_SHIFT);
	cmd->iocb.ki_ioprio = req_get_ioprio(rq);
	cmd->iocb.ki_complete = dblock_file_done;
	if (rq->cmd_flags & REQ_FUA)
		cmd->iocb.ki_flags |= IOCB_DSYNC;
	atomic64_inc(&dev->file_ios);
	/* The completion may run before the submission returns. */
	atomic_set(&cmd->file_ref, 2);
	if (dir == ITER_SOURCE) {
#ifdef DBLOCK_HAVE_KIOCB_START_WRITE
		kiocb_start_write(&cmd->iocb);
#endif
		ret = file->f_op->write_iter(&cmd->iocb, &it);
	} else {
		ret = file->f_op->read_iter(&cmd->iocb, &it);
	}
	if (ret != -EIOCBQUEUED)
		dblock_file_done(&cmd->iocb, ret);
	dblock_file_put(cmd);
	return BLK_STS_OK;
}
