# fleetsim: two commands set everything up on a fresh machine.
#   make run    runs the main job on embedded defaults
#   make test   vet, tests (race detector where affordable), boundary checks
GO       ?= go
BIN      := bin/fleetsim
PKGS     := ./...
# Go modules come from the module proxy at pinned versions (go.mod); never
# let the go command fetch a different toolchain.
export GOTOOLCHAIN := local
export GOFLAGS     := -buildvcs=false

.PHONY: all build run scale report-check test lint-vet test-race test-long bench fuzz lint fmt clean loadtest

all: build

build:
	$(GO) build -o $(BIN) ./cmd/fleetsim

# The main job: the built-in default scenario (a fleet rollout in virtual
# time); the report goes to fleetsim-report/.
run: build
	./$(BIN) run quick

# The fleet at 10,000, 100,000 and 1,000,000 devices (SCALE_COUNTS to
# choose): wall time, peak RSS, bytes per device, steps/s. Long: not in test.
scale:
	scripts/scale.sh

test: lint-vet test-race test-long report-check

lint-vet:
	$(GO) vet $(PKGS)

# -short trims the long sweeps under the race detector and skips the live
# fleet's wall-clock comparison; test-long runs them in full, one at a time.
test-race:
	$(GO) test -race -short -count=1 $(PKGS)

test-long:
	$(GO) test -count=1 -run 'Sweep' ./devicemodel/...
	$(GO) test -count=1 -run 'TestLiveAgreesWithVirtual' -v ./internal/fleetrun/

# report.html as a browser draws it: headless Chromium, installed from
# Debian by scripts/report-screenshot.sh when missing.
report-check:
	FLEETSIM_CHROMIUM=1 $(GO) test -count=1 -run TestReportScreenshot -v ./internal/fleetrun/

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)

# Fuzz every native fuzz target for FUZZTIME each (default 30s).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# The gateway under load on loopback (mTLS, TCP and HTTP/3) against nginx
# serving the same bytes; LOADTEST_DURATION sets each run's window (15s).
loadtest:
	scripts/loadtest.sh

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.6.1
lint: lint-vet
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) run $(STATICCHECK) $(PKGS)

fmt:
	gofmt -w .

clean:
	rm -rf bin
