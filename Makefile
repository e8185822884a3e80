# dblock: top-level build.
#   make               dblock.ko (here) and the userspace (build/bin/)
#   make module        dblock.ko only; KDIR=... selects the kernel headers
#   make userspace     libdblock, dblockctl, dblock_sample_ramdisk, tests
#   make demo          the main job: a QEMU guest serves and mounts a ramdisk
#   make check         every test: unit tests, then guest tests on 6.1 and 6.12
#   make bench         the side-by-side benchmark (not a test)
#   make bench-rbd     krbd, rbd-nbd and dblock-serve (rbd:) on one Ceph cluster (not a test)
#   make install       libdblock (static, shared), headers, pkg-config and CMake files,
#                      tools, man pages, udev rule, systemd unit: PREFIX=/usr/local, DESTDIR
#   make dkms-install  dblock.ko through DKMS (root), for KVER="..." (default: running kernel)
#   make dkms-uninstall
#   make deb           Debian packages (dblock-dkms, libdblock0, libdblock-dev, dblock-tools)
#                      into DEB_DIR (default build/deb), checked by lintian
# The Kbuild file beside this one is what the kernel's build reads.

KDIR ?= /lib/modules/$(shell uname -r)/build
BUILD_DIR ?= build
CMAKE_BUILD_TYPE ?= RelWithDebInfo

.PHONY: all module userspace probes demo check bench bench-rbd clean install uninstall dkms-source dkms-install dkms-uninstall deb

all: module userspace

probes:
	@if [ ! -f "$(KDIR)/Makefile" ]; then \
		echo "error: no kernel build tree at $(KDIR)." >&2; \
		echo "  Install the headers of the running kernel (Debian/Ubuntu: sudo apt install linux-headers-$$(uname -r))," >&2; \
		echo "  or pass the headers of another kernel: make KDIR=/usr/src/linux-headers-VERSION" >&2; \
		exit 1; \
	fi
	./kernel/probes/run-probes.sh "$(KDIR)" kernel/dblock_probes.h $(if $(ARCH),ARCH=$(ARCH)) $(if $(CROSS_COMPILE),CROSS_COMPILE=$(CROSS_COMPILE))

module: probes
	$(MAKE) -C "$(KDIR)" M="$(CURDIR)" modules

userspace:
	cmake -S . -B "$(BUILD_DIR)" -DCMAKE_BUILD_TYPE=$(CMAKE_BUILD_TYPE)
	cmake --build "$(BUILD_DIR)" -j "$$(nproc)"

demo:
	./scripts/demo.sh

check:
	./scripts/test-all.sh

bench:
	./bench/run-bench.sh

bench-rbd:
	./bench/rbd-bench.sh

clean:
	-[ -f "$(KDIR)/Makefile" ] && $(MAKE) -C "$(KDIR)" M="$(CURDIR)" clean
	rm -rf "$(BUILD_DIR)" kernel/dblock_probes.h

# Installation; see docs/install.md.  CMAKE_ARGS: more cmake options.
PREFIX ?= /usr/local
install:
	cmake -S . -B "$(BUILD_DIR)" -DCMAKE_BUILD_TYPE=$(CMAKE_BUILD_TYPE) -DCMAKE_INSTALL_PREFIX="$(PREFIX)" $(CMAKE_ARGS)
	cmake --build "$(BUILD_DIR)" -j "$$(nproc)"
	DESTDIR="$(DESTDIR)" cmake --install "$(BUILD_DIR)"
	@# The tools link libdblock.so.0: refresh the loader's cache for it.
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig; fi

uninstall:
	@[ -f "$(BUILD_DIR)/install_manifest.txt" ] || { echo "error: nothing installed from $(BUILD_DIR)" >&2; exit 1; }
	sed 's|^|$(DESTDIR)|' "$(BUILD_DIR)/install_manifest.txt" | xargs -r -d '\n' rm -f --

DKMS_VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' dkms.conf)
DKMS_SRC = /usr/src/dblock-$(DKMS_VERSION)
DKMS_KERNELS = $(foreach k,$(KVER),-k $(k))
# The module's sources as DKMS wants them, in DKMS_SRC (debian/rules uses it too).
dkms-source:
	rm -rf "$(DKMS_SRC)"
	mkdir -p "$(DKMS_SRC)/kernel/probes" "$(DKMS_SRC)/include/uapi/linux"
	cp Makefile Kbuild dkms.conf "$(DKMS_SRC)/"
	cp kernel/*.[ch] "$(DKMS_SRC)/kernel/"
	rm -f "$(DKMS_SRC)/kernel/dblock_probes.h"
	cp kernel/probes/*.c kernel/probes/run-probes.sh "$(DKMS_SRC)/kernel/probes/"
	cp include/uapi/linux/dblock.h "$(DKMS_SRC)/include/uapi/linux/"

dkms-install:
	@command -v dkms >/dev/null || { echo "error: dkms is not installed (Debian/Ubuntu: sudo apt install dkms; Fedora: sudo dnf install dkms)" >&2; exit 1; }
	$(MAKE) dkms-source DKMS_SRC="$(DKMS_SRC)"
	dkms status -m dblock -v $(DKMS_VERSION) | grep -q . || dkms add -m dblock -v $(DKMS_VERSION)
	dkms build --force -m dblock -v $(DKMS_VERSION) $(DKMS_KERNELS)
	dkms install --force -m dblock -v $(DKMS_VERSION) $(DKMS_KERNELS)

dkms-uninstall:
	-dkms remove -m dblock -v $(DKMS_VERSION) --all
	rm -rf "$(DKMS_SRC)"

# Debian packages into DEB_DIR, then lintian (scripts/make-deb.sh; docs/install.md).
DEB_DIR ?= $(BUILD_DIR)/deb
deb:
	./scripts/make-deb.sh "$(DEB_DIR)"
