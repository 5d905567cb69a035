# rstguard. Targets run as root: tests load BPF programs and build namespaces.
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
CLANG   ?= clang-19
BINS    := bin/rstguard bin/rstguard-inject bin/rstguard-lab bin/rstguard-pktgen bin/rstguard-bench
GOFILES := $(shell find . -name '*.go' -not -path './.git/*')
# Stamped into every binary: rstguard version, metrics and pcap sections name it.
VERSION ?= $(shell git describe --always --dirty --tags 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/rstguard/rstguard/control/version.Version=$(VERSION) \
	-X github.com/rstguard/rstguard/control/version.Commit=$(COMMIT)

.PHONY: all build generate check-generate test e2e matrix corpus corpus-update bench fuzz lint demo deps clean install deb

all: build

build: $(BINS)

bin/%: $(GOFILES) go.mod go.sum
	$(GO) build -ldflags "$(LDFLAGS)" -o $@ ./cmd/$*

# Regenerates the committed bpf2go output from xdp/bpf/*.c with clang-19.
generate:
	$(GO) generate ./xdp

# Fails when the committed BPF objects differ from what the sources produce.
check-generate: generate
	@git diff --exit-code --stat -- xdp/ || \
		(echo "xdp/: committed bpf2go output is stale: run 'make generate' and commit" >&2; exit 1)

lint:
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt needed:" $$out >&2; exit 1; fi
	$(GO) vet ./...

# Everything CI runs: generated-code freshness, lint, unit and kernel tests
# (the committed fuzz corpus among them), every benchmark once, the live
# benchmark suite in short mode (so that it never rots; its report goes to
# lab-output/), a short fuzz run, and the detection matrix.
test: deps check-generate lint build
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -run '^$$' -bench . -benchtime=1x ./...
	./bin/rstguard-bench --short --out lab-output/bench
	$(MAKE) fuzz FUZZTIME=15s
	$(MAKE) e2e

# Fuzzes the program with arbitrary frames (dataplane.FuzzFrames). Inputs
# that find something land in dataplane/testdata/fuzz/: commit them.
FUZZTIME ?= 2m
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzFrames -fuzztime $(FUZZTIME) ./dataplane

# The detection matrix: every injector profile and legitimate reset through
# the namespace lab; writes lab-output/detection-matrix.md (the working tree
# stays clean), fails if a goal is missed.
e2e: build
	./bin/rstguard-lab matrix --out lab-output --matrix lab-output/detection-matrix.md

# The real-traffic corpus (../shared/corpus, or RSTGUARD_CORPUS): the
# figures docs/SIGNALS.md gives and a per-capture table. make test runs the
# same test without the table.
corpus:
	$(GO) test -count=1 -run '^TestCorpus$$' -v ./control/analyze -args -corpus-table

# After a change of verdict that is meant: rewrites each capture's verdict
# counts (control/analyze/testdata/corpus.golden.json) for review.
corpus-update:
	$(GO) test -count=1 -run '^TestCorpus$$' ./control/analyze -args -update-corpus

# Runs the matrix and updates the committed docs/detection-matrix.md.
matrix: e2e
	cp lab-output/detection-matrix.md docs/detection-matrix.md

# The incident, replayed without and with rstguard (the README's first command).
# make demo WIRE=1: the gateway as a bump in the wire (rstguard run --wire).
demo: deps build
	./bin/rstguard-lab demo --out lab-output $(if $(WIRE),--wire)

# Per-path costs through BPF_PROG_TEST_RUN (Go benchmarks), then the live
# suite: rstguard-pktgen's gateway traffic at 1 k to 10 M flows, floods and
# memory, against baselines in the same run. Writes bench/results/DATE.md
# and its plots: commit them, and link the latest from docs/BENCHMARKS.md.
bench: deps build
	$(GO) test -run '^$$' -bench . -benchtime=5x ./dataplane
	./bin/rstguard-bench --out bench/results

# Installs the daemon, its unit, logrotate file, default settings (kept if
# present), man page and shell completions under DESTDIR/PREFIX.
PREFIX  ?= /usr/local
DESTDIR ?=
install: bin/rstguard
	install -D -m 0755 bin/rstguard $(DESTDIR)$(PREFIX)/sbin/rstguard
	install -d -m 0755 $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's|/usr/sbin/rstguard|$(PREFIX)/sbin/rstguard|' contrib/systemd/rstguard.service \
		> $(DESTDIR)$(PREFIX)/lib/systemd/system/rstguard.service
	install -D -m 0644 contrib/logrotate/rstguard $(DESTDIR)/etc/logrotate.d/rstguard
	test -e $(DESTDIR)/etc/rstguard/rstguard.json || \
		install -D -m 0600 contrib/rstguard.json $(DESTDIR)/etc/rstguard/rstguard.json
	install -d -m 0755 $(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions
	bin/rstguard man | gzip -9n > $(DESTDIR)$(PREFIX)/share/man/man8/rstguard.8.gz
	bin/rstguard completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/rstguard
	bin/rstguard completion zsh > $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_rstguard

# A Debian package of what install installs (PREFIX /usr), in bin/. Its
# settings file is a conffile; it does not start the service.
# Its version sorts as dpkg compares them: the last v-tag and the commits
# since it (v1.2.0-5-gabc1234 -> 1.2.0+5.gabc1234), or, before any tag, 0~git,
# the commit count and the commit (0~git212.gabc1234).
DEB_VERSION := $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null) && \
	echo "$$v" | sed -E 's/^v//; s/-([0-9]+)-g/+\1.g/' || \
	echo "0~git$$(git rev-list --count HEAD 2>/dev/null || echo 0).g$$(git rev-parse --short HEAD 2>/dev/null || echo 0)")
DEB_ARCH    := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB         := bin/rstguard_$(DEB_VERSION)_$(DEB_ARCH).deb
deb: bin/rstguard
	rm -rf bin/deb && $(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/bin/deb PREFIX=/usr
	install -d bin/deb/DEBIAN
	printf '%s\n' /etc/rstguard/rstguard.json /etc/logrotate.d/rstguard > bin/deb/DEBIAN/conffiles
	{ echo "Package: rstguard"; echo "Version: $(DEB_VERSION)"; echo "Architecture: $(DEB_ARCH)"; \
	  echo "Maintainer: rstguard developers <rstguard@localhost>"; echo "Section: net"; echo "Priority: optional"; \
	  echo "Depends: libc6"; echo "Recommends: logrotate"; \
	  echo "Description: stops forged TCP resets on a Linux gateway (XDP)"; \
	  echo " An XDP program judges every TCP RST against its flow's state and reports,"; \
	  echo " drops or holds the forged ones; events, metrics and pcapng evidence."; } > bin/deb/DEBIAN/control
	dpkg-deb --root-owner-group -Zgzip --build bin/deb $(DEB) >/dev/null
	@echo $(DEB)

# Installs what a fresh Debian machine lacks.
deps:
	./.ci/deps

clean:
	rm -rf bin lab-output
