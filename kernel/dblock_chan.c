// SPDX-License-Identifier: GPL-2.0
/*
 * dblock: the per-device channel a server opens: mmap of the buffer areas,
 * START, SERVE (commit and fetch), COMMIT from any thread, the backend's
 * description and the file the kernel does I/O on (dblock_file.c).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "dblock.h"

static int dblock_chan_open(struct inode *inode, struct file *file)
{
	struct dblock_dev *dev = container_of(inode->i_cdev, struct dblock_dev,
					      cdev);
	int ret = 0;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;

	mutex_lock(&dev->server_lock);
	if (READ_ONCE(dev->state) == DBLOCK_STATE_DEAD) {
		ret = -ENODEV;
	} else if (dev->server) {
		ret = -EBUSY;
	} else {
		dev->server = get_pid(task_tgid(current));
		dblock_dev_server_attach(dev);
	}
	mutex_unlock(&dev->server_lock);
	if (ret)
		return ret;

	file->private_data = dev;
	return stream_open(inode, file);
}

static int dblock_chan_release(struct inode *inode, struct file *file)
{
	struct dblock_dev *dev = file->private_data;

	mutex_lock(&dev->server_lock);
	dblock_dev_server_detach(dev);
	put_pid(dev->server);
	dev->server = NULL;
	mutex_unlock(&dev->server_lock);
	return 0;
}

/*
 * The kernel's own buffer area of a queue, for servers that mmap it rather
 * than pass their memory in DBLOCK_IOC_SERVE: allocated on first need, so
 * that a device whose server brings its own memory holds none.
 */
static void *dblock_queue_area(struct dblock_queue *dq)
{
	/* Pairs with the cmpxchg below: the area's zeroes are seen first. */
	void *buf = smp_load_acquire(&dq->buf);

	if (buf)
		return buf;
	buf = vmalloc_user(dq->dev->buffer_bytes);
	if (!buf)
		return NULL;
	/* mmap and SERVE may race here: the first one's area stays. */
	if (cmpxchg_release(&dq->buf, NULL, buf)) {
		vfree(buf);
		/* Pairs with the winner's cmpxchg_release(). */
		buf = smp_load_acquire(&dq->buf);
	}
	return buf;
}

/* Queue q's buffer area is at file offset q * buffer_bytes. */
static int dblock_chan_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct dblock_dev *dev = file->private_data;
	unsigned long area_pages = dev->buffer_bytes >> PAGE_SHIFT;
	unsigned long q = vma->vm_pgoff / area_pages;
	void *buf;

	if (vma->vm_pgoff % area_pages || q >= dev->config.nr_queues ||
	    vma->vm_end - vma->vm_start > dev->buffer_bytes)
		return -EINVAL;
	buf = dblock_queue_area(&dev->queues[q]);
	if (!buf)
		return -ENOMEM;
	return remap_vmalloc_range(vma, buf, 0);
}

/*
 * Where this SERVE call finds request data: the server's memory at @user,
 * or else the kernel's area at @kern.
 */
struct dblock_area {
	u64	user;
	void	*kern;
};

/* Pages of the server's slot pinned at a time, on the copier's stack. */
#define DBLOCK_PIN_BATCH	32

/* The pinned window of the server's slot: @nr pages from page @first. */
struct dblock_pins {
	struct page	*pages[DBLOCK_PIN_BATCH];
	unsigned long	first;
	int		nr;
};

static void dblock_unpin(struct dblock_pins *p, bool dirty)
{
	if (!p->nr)
		return;
	if (dirty)
		unpin_user_pages_dirty_lock(p->pages, p->nr, true);
	else
		unpin_user_pages(p->pages, p->nr);
	p->nr = 0;
}

/*
 * Makes page @idx of the slot at @base (of @total pages) one of the pinned
 * window's, pinning the next batch from it if need be.
 */
static int dblock_pin_at(struct dblock_pins *p, u64 base, unsigned long idx,
			 int total, bool to_slot)
{
	int nr = min_t(int, total - idx, DBLOCK_PIN_BATCH);
	int pinned;

	if (p->nr && idx >= p->first && idx < p->first + p->nr)
		return 0;
	dblock_unpin(p, to_slot);
	/* May fault pages in: no lock is held here. */
	pinned = pin_user_pages_fast(base + idx * PAGE_SIZE, nr,
				     to_slot ? FOLL_WRITE : 0, p->pages);
	if (pinned != nr) {
		if (pinned > 0)
			unpin_user_pages(p->pages, pinned);
		return -EFAULT;
	}
	p->first = idx;
	p->nr = nr;
	return 0;
}

/*
 * The server's slot is pinned and copied with memcpy through the kernel's
 * mapping of its pages, not with copy_to_user(): under emulation (QEMU TCG)
 * the user-copy instructions made 1 MiB requests 3.5 times slower, and 50
 * times from buffers never written (the zero page).  The pages are pinned
 * a batch at a time, in an array on the stack, so that any thread may copy
 * (DBLOCK_IOC_COMMIT) without a shared one.
 */
static int dblock_copy_user(u64 uaddr, struct request *rq, bool to_slot)
{
	u64 base = uaddr & PAGE_MASK;
	size_t skip = offset_in_page(uaddr);
	int total = DIV_ROUND_UP(skip + blk_rq_bytes(rq), PAGE_SIZE);
	struct dblock_pins pins = {};
	struct req_iterator iter;
	struct bio_vec bv;
	int ret = 0;

	rq_for_each_segment(bv, rq, iter) {
		void *kaddr = bvec_kmap_local(&bv);
		unsigned int done = 0;

		while (done < bv.bv_len) {
			unsigned long idx = skip >> PAGE_SHIFT;
			size_t off = offset_in_page(skip);
			size_t n = min_t(size_t, bv.bv_len - done, PAGE_SIZE - off);
			struct page *page;
			void *uaddr_k;

			ret = dblock_pin_at(&pins, base, idx, total, to_slot);
			if (ret)
				break;
			page = pins.pages[idx - pins.first];
			uaddr_k = kmap_local_page(page);
			if (to_slot) {
				memcpy(uaddr_k + off, kaddr + done, n);
				flush_dcache_page(page);
			} else {
				memcpy(kaddr + done, uaddr_k + off, n);
			}
			kunmap_local(uaddr_k);
			done += n;
			skip += n;
		}
		kunmap_local(kaddr);
		if (ret)
			break;
		if (!to_slot)
			flush_dcache_page(bv.bv_page);
	}
	dblock_unpin(&pins, to_slot);
	return ret;
}

/* Copies @rq's data into its slot (@to_slot) or out of it. */
static int dblock_copy_rq(struct dblock_queue *dq, const struct dblock_area *area,
			  struct request *rq, bool to_slot)
{
	size_t off = (size_t)rq->tag * dq->dev->config.max_io_bytes;
	struct req_iterator iter;
	struct bio_vec bv;

	if (!blk_rq_bytes(rq))
		return 0;
	if (area->user)
		return dblock_copy_user(area->user + off, rq, to_slot);
	if (!area->kern)
		return -ENOMEM;
	rq_for_each_segment(bv, rq, iter) {
		if (to_slot)
			memcpy_from_bvec(area->kern + off, &bv);
		else
			memcpy_to_bvec(&bv, area->kern + off);
		off += bv.bv_len;
	}
	return 0;
}

/* Claims the request @c answers; NULL if it is not this server's to answer. */
static struct request *dblock_claim(struct dblock_queue *dq,
				    const struct dblock_completion *c)
{
	unsigned int fetched, done;
	struct dblock_cmd *cmd;
	struct request *rq;

	if (c->tag >= dq->dev->config.queue_depth || c->seq > DBLOCK_CMD_SEQ_MASK ||
	    c->flags & ~DBLOCK_CPL_FILE || c->__reserved || c->result > 0 ||
	    c->result < -MAX_ERRNO || (c->flags & DBLOCK_CPL_FILE && c->result))
		return NULL;
	rq = READ_ONCE(dq->inflight[c->tag]);
	if (!rq)
		return NULL;
	cmd = blk_mq_rq_to_pdu(rq);
	fetched = (c->seq << DBLOCK_CMD_STATE_BITS) | DBLOCK_CMD_FETCHED;
	done = (c->seq << DBLOCK_CMD_STATE_BITS) | DBLOCK_CMD_DONE;
	if (atomic_cmpxchg(&cmd->state, fetched, done) != fetched)
		return NULL;
	WRITE_ONCE(dq->inflight[c->tag], NULL);
	return rq;
}

/* Called before the failed request ends: whoever sees the error sees it counted. */
static void dblock_count_error(struct dblock_queue *dq)
{
	atomic64_inc(&dq->dev->errors);
}

/*
 * Puts a request claimed by an answer that could not be used back at the
 * head of its queue, for the recovery policy to hold or fail.
 */
static void dblock_requeue_answered(struct dblock_queue *dq, struct request *rq)
{
	struct dblock_cmd *cmd = blk_mq_rq_to_pdu(rq);

	spin_lock(&dq->lock);
	dblock_cmd_set_state(cmd, atomic_read(&cmd->state) >>
			     DBLOCK_CMD_STATE_BITS, DBLOCK_CMD_QUEUED);
	list_add(&cmd->node, &dq->pending);
	spin_unlock(&dq->lock);
	atomic64_inc(&dq->dev->requeued);
}

/* Completions read from the server at a time, on the committer's stack. */
#define DBLOCK_CPL_BATCH	16

/* Ends the requests @cpl answers; counts in @rejected those it cannot. */
static void dblock_commit_batch(struct dblock_queue *dq,
				const struct dblock_area *area,
				const struct dblock_completion *cpl,
				unsigned int nr, unsigned int *rejected)
{
	DEFINE_IO_COMP_BATCH(iob);
	unsigned int i;

	for (i = 0; i < nr; i++) {
		struct request *rq = dblock_claim(dq, &cpl[i]);
		struct dblock_cmd *cmd;
		blk_status_t status;

		if (!rq) {
			(*rejected)++;
			continue;
		}
		if (cpl[i].flags & DBLOCK_CPL_FILE) {
			/* The file's I/O ends it, unless it cannot start. */
			status = dblock_file_rw(dq->dev, rq);
			if (!status)
				continue;
			dblock_count_error(dq);
			blk_mq_end_request(rq, status);
			continue;
		}
		status = errno_to_blk_status(cpl[i].result);
		cmd = blk_mq_rq_to_pdu(rq);
		if (!status && cmd->no_data) {
			pr_warn_ratelimited("%s: queue %u: a write fetched without its data was answered without the file\n",
					    dq->dev->config.name, dq->index);
			status = BLK_STS_IOERR;
		}
		if (!cpl[i].result && req_op(rq) == REQ_OP_READ &&
		    dblock_copy_rq(dq, area, rq, false)) {
			/*
			 * The server is being killed (pinning its pages fails
			 * then): its answer never arrived, so the request goes
			 * back to the queue, as dblock_fetch() does with a write.
			 */
			if (fatal_signal_pending(current)) {
				dblock_requeue_answered(dq, rq);
				continue;
			}
			pr_warn_ratelimited("%s: queue %u: read data could not be copied from the buffer\n",
					    dq->dev->config.name, dq->index);
			status = BLK_STS_IOERR;
		}
		if (status)
			dblock_count_error(dq);
		/* Successes end together: their tags go back in one go. */
		if (status || !blk_mq_add_to_batch(rq, &iob, 0,
						   blk_mq_end_request_batch))
			blk_mq_end_request(rq, status);
	}
	if (iob.complete)
		iob.complete(&iob);
}

/*
 * Hands back @nr answers of queue @dq, from SERVE or COMMIT: any number of
 * threads may do so at once, each answer claiming its request on its own.
 * The answers read before a fault are used.
 */
static int dblock_commit(struct dblock_queue *dq, const struct dblock_area *area,
			 const struct dblock_completion __user *ucpl,
			 unsigned int nr, unsigned int *rejected)
{
	struct dblock_completion cpl[DBLOCK_CPL_BATCH];
	unsigned int done, n;
	int ret = 0;

	if (nr > dq->dev->config.queue_depth)
		return -EINVAL;
	for (done = 0; done < nr; done += n) {
		n = min_t(unsigned int, nr - done, DBLOCK_CPL_BATCH);
		if (copy_from_user(cpl, ucpl + done, n * sizeof(*cpl))) {
			ret = -EFAULT;
			break;
		}
		dblock_commit_batch(dq, area, cpl, n, rejected);
	}
	if (*rejected) {
		atomic64_add(*rejected, &dq->dev->rejected);
		pr_warn_ratelimited("%s: queue %u: %u completions refused (unknown tag, stale seq or already answered)\n",
				    dq->dev->config.name, dq->index, *rejected);
	}
	return ret;
}

static void dblock_describe(struct dblock_queue *dq, struct request *rq,
			    struct dblock_request *req, unsigned int seq)
{
	struct dblock_queue_stats *st = &dq->stats;

	memset(req, 0, sizeof(*req));
	req->tag = rq->tag;
	req->seq = seq;
	req->offset = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	req->length = blk_rq_bytes(rq);
	switch (req_op(rq)) {
	case REQ_OP_WRITE:
		req->op = DBLOCK_OP_WRITE;
		if (rq->cmd_flags & REQ_FUA)
			req->flags |= DBLOCK_REQ_FUA;
		u64_stats_inc(&st->writes);
		break;
	case REQ_OP_FLUSH:
		/* A flush has no position: its sector is -1. */
		req->op = DBLOCK_OP_FLUSH;
		req->offset = 0;
		req->length = 0;
		u64_stats_inc(&st->flushes);
		break;
	case REQ_OP_DISCARD:
		req->op = DBLOCK_OP_DISCARD;
		u64_stats_inc(&st->discards);
		break;
	case REQ_OP_WRITE_ZEROES:
		req->op = DBLOCK_OP_WRITE_ZEROES;
		if (rq->cmd_flags & REQ_NOUNMAP)
			req->flags |= DBLOCK_REQ_NOUNMAP;
		u64_stats_inc(&st->write_zeroes);
		break;
	default:
		req->op = DBLOCK_OP_READ;
		u64_stats_inc(&st->reads);
		break;
	}
}

static bool dblock_has_work(struct dblock_queue *dq)
{
	return !list_empty(&dq->pending) || READ_ONCE(dq->gone) ||
	       READ_ONCE(dq->resized) || READ_ONCE(dq->kicked);
}

/* Hands up to @max queued requests to the server; returns how many. */
static unsigned int dblock_fetch(struct dblock_queue *dq,
				 const struct dblock_area *area,
				 unsigned int max, u32 *status)
{
	struct dblock_request *req = dq->req_scratch;
	struct dblock_cmd *cmd, *next;
	unsigned int n = 0;
	LIST_HEAD(batch);
	LIST_HEAD(back);

	spin_lock(&dq->lock);
	list_for_each_entry_safe(cmd, next, &dq->pending, node) {
		unsigned int seq;

		if (n == max)
			break;
		seq = ((atomic_read(&cmd->state) >> DBLOCK_CMD_STATE_BITS) + 1) &
		      DBLOCK_CMD_SEQ_MASK;
		atomic_set(&cmd->state,
			   (seq << DBLOCK_CMD_STATE_BITS) | DBLOCK_CMD_FETCHING);
		list_move_tail(&cmd->node, &batch);
		n++;
	}
	if (dq->gone && list_empty(&dq->pending))
		*status |= DBLOCK_SERVE_GONE;
	/* Read after taking the batch: a request past the old end is in it. */
	if (dq->resized)
		*status |= DBLOCK_SERVE_RESIZED;
	dq->resized = false;
	spin_unlock(&dq->lock);

	n = 0;
	list_for_each_entry_safe(cmd, next, &batch, node) {
		struct request *rq = blk_mq_rq_from_pdu(cmd);
		unsigned int seq = atomic_read(&cmd->state) >>
				   DBLOCK_CMD_STATE_BITS;

		list_del_init(&cmd->node);
		cmd->no_data = req_op(rq) == REQ_OP_WRITE &&
			       dblock_file_no_data(dq->dev);
		/* Copied while FETCHING: nobody else may complete it yet. */
		if (req_op(rq) == REQ_OP_WRITE && !cmd->no_data &&
		    dblock_copy_rq(dq, area, rq, true)) {
			/*
			 * The server is being killed (pinning its pages fails
			 * then): the request was never its, so it goes back to
			 * the queue, for the recovery policy to hold or fail.
			 */
			if (fatal_signal_pending(current)) {
				dblock_cmd_set_state(cmd, seq, DBLOCK_CMD_QUEUED);
				list_add_tail(&cmd->node, &back);
				atomic64_inc(&dq->dev->requeued);
				continue;
			}
			pr_warn_ratelimited("%s: queue %u: write data could not be copied to the buffer\n",
					    dq->dev->config.name, dq->index);
			dblock_cmd_set_state(cmd, seq, DBLOCK_CMD_DONE);
			dblock_count_error(dq);
			blk_mq_end_request(rq, BLK_STS_IOERR);
			continue;
		}
		WRITE_ONCE(dq->inflight[rq->tag], rq);
		u64_stats_update_begin(&dq->stats.sync);
		dblock_describe(dq, rq, &req[n++], seq);
		u64_stats_update_end(&dq->stats.sync);
		/* Only now may a completion or the timeout handler claim it. */
		atomic_set_release(&cmd->state, (seq << DBLOCK_CMD_STATE_BITS) |
				   DBLOCK_CMD_FETCHED);
	}
	if (!list_empty(&back)) {
		/* Older than anything queued since: served first. */
		spin_lock(&dq->lock);
		list_splice(&back, &dq->pending);
		spin_unlock(&dq->lock);
	}
	return n;
}

static void dblock_mark_ready(struct dblock_queue *dq)
{
	struct dblock_dev *dev = dq->dev;

	if (dq->ready)
		return;
	dq->ready = true;
	if (atomic_inc_return(&dev->nr_ready) == dev->config.nr_queues)
		wake_up_all(&dev->start_wait);
}

/*
 * Writes @nr requests to the server's array, whose elements are @size bytes
 * apart: each is the kernel's struct, then zeroes up to @size.
 */
static int dblock_put_requests(u64 uaddr, const struct dblock_request *req,
			       unsigned int nr, unsigned int size)
{
	void __user *dst = u64_to_user_ptr(uaddr);
	unsigned int i;

	/* A larger struct must copy only what fits in @size: see the UAPI. */
	BUILD_BUG_ON(sizeof(*req) != DBLOCK_REQUEST_SIZE_MIN);
	if (size == sizeof(*req))
		return copy_to_user(dst, req, nr * sizeof(*req)) ? -EFAULT : 0;
	for (i = 0; i < nr; i++, dst += size)
		if (copy_to_user(dst, &req[i], sizeof(*req)) ||
		    clear_user(dst + sizeof(*req), size - sizeof(*req)))
			return -EFAULT;
	return 0;
}

/* @ptr is 0 (the mmapped area) or a queue's buffer area in user memory. */
static bool dblock_buffer_ok(struct dblock_dev *dev, u64 ptr)
{
	/* A pointer a 32-bit kernel would cut short is no user memory. */
	return !ptr || (ptr == (unsigned long)ptr &&
			access_ok(u64_to_user_ptr(ptr), dev->buffer_bytes));
}

static long dblock_chan_serve(struct dblock_dev *dev,
			      struct dblock_serve __user *uarg)
{
	struct dblock_area area = {};
	struct dblock_serve s;
	struct dblock_queue *dq;
	unsigned int max;
	int ret;

	if (copy_from_user(&s, uarg, sizeof(s)))
		return -EFAULT;
	if (s.queue >= dev->config.nr_queues ||
	    s.request_size < DBLOCK_REQUEST_SIZE_MIN || s.request_size % 8 ||
	    s.flags & ~DBLOCK_SERVE_NOWAIT || s.__pad2 || s.__reserved)
		return -EINVAL;
	if (!dblock_buffer_ok(dev, s.buffer_ptr))
		return -EFAULT;
	s.nr_requests = 0;
	s.nr_rejected = 0;
	s.status = 0;

	dq = &dev->queues[s.queue];
	if (test_and_set_bit_lock(0, &dq->serving))
		return -EBUSY;

	area.user = s.buffer_ptr;
	if (!area.user)
		area.kern = dblock_queue_area(dq);
	/* Without an area the reads answered here fail, but they are answered. */
	ret = dblock_commit(dq, &area, u64_to_user_ptr(s.completions_ptr),
			    s.nr_completions, &s.nr_rejected);
	if (!ret && !area.user && !area.kern)
		ret = -ENOMEM;
	if (ret)
		goto out_unlock;

	dblock_mark_ready(dq);
	max = min_t(unsigned int, s.max_requests, dev->config.queue_depth);
	if (max && !(s.flags & DBLOCK_SERVE_NOWAIT) &&
	    wait_event_interruptible(dq->wait, dblock_has_work(dq))) {
		/* Not -ERESTARTSYS: a restart would resend the completions. */
		ret = -EINTR;
		goto out_unlock;
	}
	/* A kick after this returns the next call at once: never lost. */
	WRITE_ONCE(dq->kicked, false);
	if (max)
		s.nr_requests = dblock_fetch(dq, &area, max, &s.status);
	else if (READ_ONCE(dq->gone))
		s.status |= DBLOCK_SERVE_GONE;
	if (s.nr_requests) {
		ret = dblock_put_requests(s.requests_ptr, dq->req_scratch,
					  s.nr_requests, s.request_size);
		if (ret)
			goto out_unlock;
	}
	if (copy_to_user(uarg, &s, sizeof(s)))
		ret = -EFAULT;

out_unlock:
	clear_bit_unlock(0, &dq->serving);
	return ret;
}

/* Answers from any thread, while the queue's own thread may be in SERVE. */
static long dblock_chan_commit(struct dblock_dev *dev,
			       struct dblock_commit __user *uarg)
{
	struct dblock_area area = {};
	struct dblock_commit c;
	struct dblock_queue *dq;
	int ret;

	if (copy_from_user(&c, uarg, sizeof(c)))
		return -EFAULT;
	if (c.queue >= dev->config.nr_queues || !c.nr_completions ||
	    c.nr_completions > dev->config.queue_depth || c.__pad[0] ||
	    c.__pad[1] || c.__pad[2] || c.__reserved[0] || c.__reserved[1])
		return -EINVAL;
	if (!dblock_buffer_ok(dev, c.buffer_ptr))
		return -EFAULT;
	dq = &dev->queues[c.queue];
	area.user = c.buffer_ptr;
	if (!area.user)
		area.kern = dblock_queue_area(dq);
	c.nr_rejected = 0;
	ret = dblock_commit(dq, &area, u64_to_user_ptr(c.completions_ptr),
			    c.nr_completions, &c.nr_rejected);
	if (put_user(c.nr_rejected, &uarg->nr_rejected))
		return -EFAULT;
	return ret;
}

static long dblock_chan_kick(struct dblock_dev *dev, unsigned long queue)
{
	struct dblock_queue *dq;

	if (queue >= dev->config.nr_queues)
		return -EINVAL;
	dq = &dev->queues[queue];
	WRITE_ONCE(dq->kicked, true);
	wake_up(&dq->wait);
	return 0;
}

static long dblock_chan_set_backend(struct dblock_dev *dev,
				    const struct dblock_backend __user *uarg)
{
	struct dblock_backend b;

	if (copy_from_user(&b, uarg, sizeof(b)))
		return -EFAULT;
	return dblock_dev_set_backend(dev, &b);
}

static long dblock_chan_set_file(struct dblock_dev *dev,
				 const struct dblock_file __user *uarg)
{
	struct dblock_file f;

	if (copy_from_user(&f, uarg, sizeof(f)))
		return -EFAULT;
	return dblock_file_set(dev, &f);
}

static long dblock_chan_ioctl(struct file *file, unsigned int cmd,
			      unsigned long arg)
{
	struct dblock_dev *dev = file->private_data;
	void __user *argp = (void __user *)arg;
	struct dblock_dev_info info;

	switch (cmd) {
	case DBLOCK_IOC_SERVE:
		return dblock_chan_serve(dev, argp);
	case DBLOCK_IOC_START:
		return dblock_dev_start(dev);
	case DBLOCK_IOC_KICK:
		return dblock_chan_kick(dev, arg);
	case DBLOCK_IOC_COMMIT:
		return dblock_chan_commit(dev, argp);
	case DBLOCK_IOC_GET_INFO:
		dblock_dev_fill_info(dev, &info);
		return copy_to_user(argp, &info, sizeof(info)) ? -EFAULT : 0;
	case DBLOCK_IOC_SET_BACKEND:
		return dblock_chan_set_backend(dev, argp);
	case DBLOCK_IOC_SET_FILE:
		return dblock_chan_set_file(dev, argp);
	default:
		return -ENOTTY;
	}
}

const struct file_operations dblock_chan_fops = {
	.owner		= THIS_MODULE,
	.open		= dblock_chan_open,
	.release	= dblock_chan_release,
	.mmap		= dblock_chan_mmap,
	.unlocked_ioctl	= dblock_chan_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};
