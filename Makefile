# dblock: top-level build.
#   make               dblock.ko (here) and the userspace (build/bin/)
#   make module        dblock.ko only; KDIR=... selects the kernel headers
#   make userspace     libdblock, dblockctl, dblock_sample_ramdisk, tests
#   make demo          the main job: a QEMU guest serves and mounts a ramdisk
#   make check         every test: unit tests, then guest tests on 6.1 and 6.12
#   make bench         the side-by-side benchmark (not a test)
# The Kbuild file beside this one is what the kernel's build reads.

KDIR ?= /lib/modules/$(shell uname -r)/build
BUILD_DIR ?= build
CMAKE_BUILD_TYPE ?= RelWithDebInfo

.PHONY: all module userspace probes demo check bench clean

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

clean:
	-[ -f "$(KDIR)/Makefile" ] && $(MAKE) -C "$(KDIR)" M="$(CURDIR)" clean
	rm -rf "$(BUILD_DIR)" kernel/dblock_probes.h
