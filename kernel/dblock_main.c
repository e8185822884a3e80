// SPDX-License-Identifier: GPL-2.0
/*
 * dblock: block devices served by a userspace program.
 *
 * This file holds the module's setup and the control device
 * /dev/dblockctl, which creates, destroys, lists and describes devices.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include "dblock.h"

struct class dblock_chan_class = {
	.name = "dblock",
};

dev_t dblock_chan_devt;
int dblock_major;

/*
 * Device table; only the control path takes the mutex, never the I/O path.
 * The outermost lock: see the lock order in dblock.h.
 */
static DEFINE_MUTEX(dblock_ctl_mutex);
static DEFINE_IDR(dblock_devices);

static struct dblock_dev *dblock_find(const struct dblock_ctl_target *t)
{
	struct dblock_dev *dev;
	int id;

	lockdep_assert_held(&dblock_ctl_mutex);
	if (!t->name[0])
		return idr_find(&dblock_devices, t->id);
	idr_for_each_entry(&dblock_devices, dev, id)
		if (!strncmp(dev->config.name, t->name, DBLOCK_NAME_MAX))
			return dev;
	return NULL;
}

static int dblock_target_validate(const struct dblock_ctl_target *t,
				  u32 flags_allowed)
{
	if (t->flags & ~flags_allowed ||
	    memchr_inv(t->__reserved, 0, sizeof(t->__reserved)))
		return -EINVAL;
	if (strnlen(t->name, DBLOCK_NAME_MAX) == DBLOCK_NAME_MAX)
		return -EINVAL;
	return 0;
}

static long dblock_ctl_create(struct dblock_ctl_create __user *uarg)
{
	struct dblock_dev_config cfg;
	struct dblock_dev_info info;
	struct dblock_ctl_target t = {};
	struct dblock_dev *dev;
	int id, ret;

	if (copy_from_user(&cfg, &uarg->config, sizeof(cfg)))
		return -EFAULT;
	ret = dblock_config_validate(&cfg);
	if (ret)
		return ret;

	mutex_lock(&dblock_ctl_mutex);
	memcpy(t.name, cfg.name, sizeof(t.name));
	if (dblock_find(&t)) {
		ret = -EEXIST;
		goto out_unlock;
	}
	id = idr_alloc(&dblock_devices, NULL, 0, DBLOCK_MAX_DEVICES, GFP_KERNEL);
	if (id < 0) {
		ret = id;
		goto out_unlock;
	}
	dev = dblock_dev_create(&cfg, id);
	if (IS_ERR(dev)) {
		ret = PTR_ERR(dev);
		idr_remove(&dblock_devices, id);
		goto out_unlock;
	}
	idr_replace(&dblock_devices, dev, id);
	dblock_dev_fill_info(dev, &info);
	mutex_unlock(&dblock_ctl_mutex);

	pr_info("%s: created (id %u, %llu bytes, %u queues of depth %u)\n",
		cfg.name, id, cfg.size_bytes, cfg.nr_queues, cfg.queue_depth);
	return copy_to_user(&uarg->info, &info, sizeof(info)) ? -EFAULT : 0;

out_unlock:
	mutex_unlock(&dblock_ctl_mutex);
	return ret;
}

static long dblock_ctl_destroy(struct dblock_ctl_target __user *uarg)
{
	struct dblock_ctl_target t;
	struct dblock_dev *dev;
	bool force;
	int ret;

	if (copy_from_user(&t, uarg, sizeof(t)))
		return -EFAULT;
	ret = dblock_target_validate(&t, DBLOCK_DESTROY_FORCE);
	if (ret)
		return ret;
	force = t.flags & DBLOCK_DESTROY_FORCE;

	/*
	 * A reference keeps @dev alive while its disk's openers are counted
	 * without the table's mutex: that may wait for a last close's
	 * writeback, and the rest of the control device must not wait with it.
	 */
	mutex_lock(&dblock_ctl_mutex);
	dev = dblock_find(&t);
	if (dev)
		get_device(&dev->cdev_dev);
	mutex_unlock(&dblock_ctl_mutex);
	if (!dev)
		return -ENODEV;

	ret = dblock_dev_mark_removing(dev, force);
	if (ret)
		goto out_put;

	mutex_lock(&dblock_ctl_mutex);
	/* Hidden, but the id stays taken until its nodes are gone. */
	if (idr_find(&dblock_devices, dev->id) == dev)
		idr_replace(&dblock_devices, NULL, dev->id);
	else
		ret = -ENODEV;	/* another destroy took it meanwhile */
	mutex_unlock(&dblock_ctl_mutex);
	if (ret)
		goto out_put;

	pr_info("%s: destroying (id %u%s)\n", dev->config.name, dev->id,
		force ? ", forced" : "");
	dblock_dev_remove(dev, force);

	mutex_lock(&dblock_ctl_mutex);
	idr_remove(&dblock_devices, dev->id);
	mutex_unlock(&dblock_ctl_mutex);
out_put:
	put_device(&dev->cdev_dev);
	return ret;
}

/*
 * The device @t names, with a reference the caller puts: not the table's
 * mutex, so that a command that waits (a change waiting for a START stuck
 * on I/O) does not hold up the rest of the control device.
 */
static struct dblock_dev *dblock_get_target(const struct dblock_ctl_target *t)
{
	struct dblock_dev *dev;
	int ret;

	ret = dblock_target_validate(t, 0);
	if (ret)
		return ERR_PTR(ret);
	mutex_lock(&dblock_ctl_mutex);
	dev = dblock_find(t);
	if (dev)
		get_device(&dev->cdev_dev);
	mutex_unlock(&dblock_ctl_mutex);
	return dev ? dev : ERR_PTR(-ENODEV);
}

static long dblock_ctl_set_params(struct dblock_ctl_set_params __user *uarg)
{
	struct dblock_ctl_set_params p;
	struct dblock_dev *dev;
	int ret;

	if (copy_from_user(&p, uarg, sizeof(p)))
		return -EFAULT;
	dev = dblock_get_target(&p.target);
	if (IS_ERR(dev))
		return PTR_ERR(dev);
	ret = dblock_dev_set_params(dev, &p);
	put_device(&dev->cdev_dev);
	return ret;
}

static long dblock_ctl_get_info(struct dblock_ctl_get_info __user *uarg)
{
	struct dblock_ctl_target t;
	struct dblock_dev_info info;
	struct dblock_dev *dev;

	if (copy_from_user(&t, &uarg->target, sizeof(t)))
		return -EFAULT;
	dev = dblock_get_target(&t);
	if (IS_ERR(dev))
		return PTR_ERR(dev);
	dblock_dev_fill_info(dev, &info);
	put_device(&dev->cdev_dev);
	return copy_to_user(&uarg->info, &info, sizeof(info)) ? -EFAULT : 0;
}

static long dblock_ctl_get_backend(struct dblock_ctl_get_backend __user *uarg)
{
	struct dblock_ctl_target t;
	struct dblock_backend b = {};
	struct dblock_dev *dev;

	if (copy_from_user(&t, &uarg->target, sizeof(t)))
		return -EFAULT;
	dev = dblock_get_target(&t);
	if (IS_ERR(dev))
		return PTR_ERR(dev);
	dblock_dev_get_backend(dev, b.text);
	put_device(&dev->cdev_dev);
	return copy_to_user(&uarg->backend, &b, sizeof(b)) ? -EFAULT : 0;
}

static long dblock_ctl_list(struct dblock_ctl_list __user *uarg)
{
	struct dblock_ctl_list l;
	struct dblock_dev *dev;
	u32 __user *ids;
	int id, ret = 0;

	if (copy_from_user(&l, uarg, sizeof(l)))
		return -EFAULT;
	if (l.count || memchr_inv(l.__reserved, 0, sizeof(l.__reserved)))
		return -EINVAL;
	ids = u64_to_user_ptr(l.ids_ptr);

	mutex_lock(&dblock_ctl_mutex);
	idr_for_each_entry(&dblock_devices, dev, id) {
		if (l.count < l.capacity && put_user(id, &ids[l.count])) {
			ret = -EFAULT;
			break;
		}
		l.count++;
	}
	mutex_unlock(&dblock_ctl_mutex);
	if (ret)
		return ret;
	return put_user(l.count, &uarg->count);
}

static long dblock_ctl_version(struct dblock_ctl_version __user *uarg)
{
	struct dblock_ctl_version v = {
		.abi_version	= DBLOCK_ABI_VERSION,
		.features	= DBLOCK_FEAT_SUPPORTED,
	};

	return copy_to_user(uarg, &v, sizeof(v)) ? -EFAULT : 0;
}

static long dblock_ctl_ioctl(struct file *file, unsigned int cmd,
			     unsigned long arg)
{
	void __user *argp = (void __user *)arg;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;

	switch (cmd) {
	case DBLOCK_CTL_GET_VERSION:
		return dblock_ctl_version(argp);
	case DBLOCK_CTL_CREATE:
		return dblock_ctl_create(argp);
	case DBLOCK_CTL_DESTROY:
		return dblock_ctl_destroy(argp);
	case DBLOCK_CTL_LIST:
		return dblock_ctl_list(argp);
	case DBLOCK_CTL_GET_INFO:
		return dblock_ctl_get_info(argp);
	case DBLOCK_CTL_SET_PARAMS:
		return dblock_ctl_set_params(argp);
	case DBLOCK_CTL_GET_BACKEND:
		return dblock_ctl_get_backend(argp);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations dblock_ctl_fops = {
	.owner		= THIS_MODULE,
	.open		= nonseekable_open,
	.unlocked_ioctl	= dblock_ctl_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

static struct miscdevice dblock_ctl_miscdev = {
	.minor		= MISC_DYNAMIC_MINOR,
	.name		= "dblockctl",
	.fops		= &dblock_ctl_fops,
	.mode		= 0600,
};

static int __init dblock_init(void)
{
	int ret;

	ret = register_blkdev(0, "dblock");
	if (ret < 0)
		return ret;
	dblock_major = ret;

	ret = alloc_chrdev_region(&dblock_chan_devt, 0, DBLOCK_MAX_DEVICES,
				  "dblock");
	if (ret)
		goto out_unregister_blkdev;

	ret = class_register(&dblock_chan_class);
	if (ret)
		goto out_unregister_chrdev;

	ret = misc_register(&dblock_ctl_miscdev);
	if (ret)
		goto out_unregister_class;

	pr_info("loaded (ABI %u)\n", DBLOCK_ABI_VERSION);
	return 0;

out_unregister_class:
	class_unregister(&dblock_chan_class);
out_unregister_chrdev:
	unregister_chrdev_region(dblock_chan_devt, DBLOCK_MAX_DEVICES);
out_unregister_blkdev:
	unregister_blkdev(dblock_major, "dblock");
	return ret;
}

/*
 * An open disk or channel holds a module reference, so by the time this
 * runs no device is in use and the remaining ones can simply be removed.
 */
static void __exit dblock_exit(void)
{
	struct dblock_dev *dev;
	int id;

	misc_deregister(&dblock_ctl_miscdev);

	mutex_lock(&dblock_ctl_mutex);
	idr_for_each_entry(&dblock_devices, dev, id) {
		idr_remove(&dblock_devices, id);
		dblock_dev_remove(dev, false);
	}
	mutex_unlock(&dblock_ctl_mutex);
	idr_destroy(&dblock_devices);

	class_unregister(&dblock_chan_class);
	unregister_chrdev_region(dblock_chan_devt, DBLOCK_MAX_DEVICES);
	unregister_blkdev(dblock_major, "dblock");
}

module_init(dblock_init);
module_exit(dblock_exit);

MODULE_DESCRIPTION("Block devices served by a userspace program");
MODULE_AUTHOR("The dblock developers");
MODULE_LICENSE("GPL");
MODULE_VERSION(DBLOCK_VERSION);
