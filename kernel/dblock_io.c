// SPDX-License-Identifier: GPL-2.0
/*
 * dblock: the blk-mq side of the I/O path: queueing requests for the
 * server, timeouts, and what happens to requests when the server goes away.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>

#include "dblock.h"

unsigned int dblock_timeout_jiffies(u32 timeout_ms)
{
	/* "Never" is a timer that keeps being re-armed; see dblock_timeout(). */
	if (timeout_ms == DBLOCK_TIMEOUT_NEVER)
		timeout_ms = DBLOCK_TIMEOUT_MS;
	return max(msecs_to_jiffies(timeout_ms), 1UL);
}

static bool dblock_op_supported(struct dblock_dev *dev, enum req_op op)
{
	u64 flags = dev->config.flags;

	switch (op) {
	case REQ_OP_READ:
	case REQ_OP_FLUSH:
		return true;
	case REQ_OP_WRITE:
		return !(flags & DBLOCK_DEV_READ_ONLY);
	case REQ_OP_DISCARD:
		return (flags & DBLOCK_DEV_DISCARD) &&
		       !(flags & DBLOCK_DEV_READ_ONLY);
	case REQ_OP_WRITE_ZEROES:
		return (flags & DBLOCK_DEV_WRITE_ZEROES) &&
		       !(flags & DBLOCK_DEV_READ_ONLY);
	default:
		return false;
	}
}

static blk_status_t dblock_queue_rq(struct blk_mq_hw_ctx *hctx,
				    const struct blk_mq_queue_data *bd)
{
	struct dblock_queue *dq = hctx->driver_data;
	struct dblock_dev *dev = dq->dev;
	struct request *rq = bd->rq;
	struct dblock_cmd *cmd = blk_mq_rq_to_pdu(rq);
	unsigned int seq;

	/* The block layer lets writes to a read-only disk through. */
	if (unlikely(!dblock_op_supported(dev, req_op(rq))))
		return req_op(rq) == REQ_OP_WRITE ? BLK_STS_IOERR :
						    BLK_STS_NOTSUPP;
	if (unlikely((req_op(rq) == REQ_OP_READ || req_op(rq) == REQ_OP_WRITE) &&
		     blk_rq_bytes(rq) > dev->config.max_io_bytes))
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

/*
 * Claims a request the server took and did not answer, and forgets it was
 * the server's: its tag may be reused once it completes.
 */
static bool dblock_claim_fetched(struct request *rq, unsigned int to)
{
	struct dblock_queue *dq = rq->mq_hctx->driver_data;
	struct dblock_cmd *cmd = blk_mq_rq_to_pdu(rq);
	unsigned int old = atomic_read(&cmd->state);
	unsigned int seq = old >> DBLOCK_CMD_STATE_BITS;

	if ((old & DBLOCK_CMD_STATE_MASK) != DBLOCK_CMD_FETCHED ||
	    atomic_cmpxchg(&cmd->state, old,
			   (seq << DBLOCK_CMD_STATE_BITS) | to) != old)
		return false;
	WRITE_ONCE(dq->inflight[rq->tag], NULL);
	return true;
}

static enum blk_eh_timer_return dblock_timeout(struct request *rq)
{
	struct dblock_queue *dq = rq->mq_hctx->driver_data;
	struct dblock_dev *dev = dq->dev;
	struct dblock_cmd *cmd = blk_mq_rq_to_pdu(rq);
	unsigned int old, seq;

	/* Held for a new server: the grace period decides, not the timeout. */
	if (READ_ONCE(dev->config.timeout_ms) == DBLOCK_TIMEOUT_NEVER ||
	    READ_ONCE(dev->holding))
		return BLK_EH_RESET_TIMER;

	spin_lock(&dq->lock);
	old = atomic_read(&cmd->state);
	seq = old >> DBLOCK_CMD_STATE_BITS;
	switch (old & DBLOCK_CMD_STATE_MASK) {
	case DBLOCK_CMD_QUEUED:
		list_del_init(&cmd->node);
		dblock_cmd_set_state(cmd, seq, DBLOCK_CMD_DONE);
		break;
	case DBLOCK_CMD_FETCHED:
		if (dblock_claim_fetched(rq, DBLOCK_CMD_DONE))
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

	atomic64_inc(&dev->timeouts);
	pr_warn_ratelimited("%s: request at sector %llu timed out on queue %u\n",
			    dev->config.name, blk_rq_pos(rq), dq->index);
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

#ifdef DBLOCK_HAVE_BLK_MQ_INIT_REQUEST_INT_NODE
static int dblock_init_request(struct blk_mq_tag_set *set, struct request *rq,
			       unsigned int hctx_idx, int numa_node)
#else
static int dblock_init_request(struct blk_mq_tag_set *set, struct request *rq,
			       unsigned int hctx_idx, unsigned int numa_node)
#endif
{
	struct dblock_cmd *cmd = blk_mq_rq_to_pdu(rq);

	INIT_LIST_HEAD(&cmd->node);
	atomic_set(&cmd->state, DBLOCK_CMD_IDLE);
	return 0;
}

const struct blk_mq_ops dblock_mq_ops = {
	.queue_rq	= dblock_queue_rq,
	.commit_rqs	= dblock_commit_rqs,
	.complete	= dblock_complete_rq,
	.timeout	= dblock_timeout,
	.init_hctx	= dblock_init_hctx,
	.init_request	= dblock_init_request,
};

static bool dblock_fail_fetched(struct request *rq, void *data)
{
	if (dblock_claim_fetched(rq, DBLOCK_CMD_DONE))
		dblock_cmd_abort(rq, BLK_STS_IOERR);
	return true;
}

/*
 * Nobody will answer what the server took or what is queued: fail all of
 * it now rather than at timeout, and fail new requests until a server opens
 * the channel again.  No server thread may be in DBLOCK_IOC_SERVE.
 */
void dblock_io_fail_all(struct dblock_dev *dev)
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

static bool dblock_requeue_one(struct request *rq, void *data)
{
	struct dblock_dev *dev = data;
	struct dblock_queue *dq = rq->mq_hctx->driver_data;
	struct dblock_cmd *cmd = blk_mq_rq_to_pdu(rq);

	spin_lock(&dq->lock);
	if (dblock_claim_fetched(rq, DBLOCK_CMD_QUEUED)) {
		/* Older than anything queued since: serve it first. */
		list_add(&cmd->node, &dq->pending);
		atomic64_inc(&dev->requeued);
	}
	spin_unlock(&dq->lock);
	return true;
}

/*
 * The server went away under DBLOCK_RECOVERY_WAIT: what it took and did not
 * answer goes back to the queues for the next server.  No server thread may
 * be in DBLOCK_IOC_SERVE.
 */
void dblock_io_requeue_fetched(struct dblock_dev *dev)
{
	blk_mq_tagset_busy_iter(&dev->tag_set, dblock_requeue_one, dev);
}
