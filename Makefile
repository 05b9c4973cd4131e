# Builds and installs gemini-rotator for C programs: the header, the shared and the static
# library, and a pkg-config file.
#
#   make install PREFIX=$HOME/.local      # PREFIX defaults to /usr/local; DESTDIR is honoured
#   make                                  # build only (the release library)
#   make uninstall PREFIX=...
#
# Then build a program with: cc app.c $(pkg-config --cflags --libs gemini_rotator)
# (PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig when pkg-config does not search that prefix; at run
# time the loader must find libgemini_rotator.so: LD_LIBRARY_PATH=$PREFIX/lib, or ldconfig.)
# A static binary instead links $PREFIX/lib/libgemini_rotator.a followed by the libraries of the
# .pc file's Libs.private.
#
# Variables: PREFIX, DESTDIR, LIBDIR, INCLUDEDIR, PKGCONFIGDIR, CARGO, CARGO_TARGET_DIR (a
# relative one is taken from the repository root, as cargo does when run there).

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CARGO ?= cargo
INSTALL ?= install

TARGET_DIR := $(if $(CARGO_TARGET_DIR),$(if $(filter /%,$(CARGO_TARGET_DIR)),$(CARGO_TARGET_DIR),$(ROOT)/$(CARGO_TARGET_DIR)),$(ROOT)/target)
RELEASE := $(TARGET_DIR)/release
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' $(ROOT)/Cargo.toml | head -n 1)
SHARED := libgemini_rotator$(if $(filter Darwin,$(shell uname -s)),.dylib,.so)
# The system libraries the static library needs, as `cargo rustc -- --print
# native-static-libs` lists them on Linux; they go to Libs.private (pkg-config --static).
LIBS_PRIVATE ?= -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

.PHONY: all build install uninstall

all: build

# Cargo knows what is stale; an up-to-date library costs a second.
build:
	cd $(ROOT) && $(CARGO) build --release --locked -p gemini-rotator

install: build
	@test -n "$(VERSION)" || { echo "Makefile: no version found in $(ROOT)/Cargo.toml" >&2; exit 1; }
	$(INSTALL) -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL) -m 644 $(ROOT)/include/gemini_rotator.h $(DESTDIR)$(INCLUDEDIR)/gemini_rotator.h
	$(INSTALL) -m 755 $(RELEASE)/$(SHARED) $(DESTDIR)$(LIBDIR)/$(SHARED)
	$(INSTALL) -m 644 $(RELEASE)/libgemini_rotator.a $(DESTDIR)$(LIBDIR)/libgemini_rotator.a
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@LIBS_PRIVATE@|$(LIBS_PRIVATE)|g' \
	    $(ROOT)/gemini_rotator.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/gemini_rotator.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/gemini_rotator.pc

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/gemini_rotator.h $(DESTDIR)$(LIBDIR)/$(SHARED) \
	    $(DESTDIR)$(LIBDIR)/libgemini_rotator.a $(DESTDIR)$(PKGCONFIGDIR)/gemini_rotator.pc
