# tuntcp: `make test` (the suite) and `make storm` (the main job). Each creates/updates .venv.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=
ARGS    ?=

.PHONY: venv tools test test-unit test-netns test-rootless serve storm bench fuzz conformance clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(STAMP)

# Debian tools the netns tests and scenarios drive (curl, socat, ab, wrk, hping3, tshark, tcpdump).
tools:
	@scripts/install-tools.sh

test: venv tools
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/python -m pytest -q -m "not netns" $(PYTEST_ARGS)

test-netns: venv tools
	$(BIN)/python -m pytest -q -m netns $(PYTEST_ARGS)

# as root: serve, storm and the netns tier as an unprivileged user (a private 0666 TUN node)
test-rootless: venv tools
	scripts/rootless-ci.sh $(PYTEST_ARGS)

serve: venv tools
	$(BIN)/tuntcp serve $(ARGS)

storm: venv tools
	$(BIN)/tuntcp storm $(ARGS)

bench: venv tools
	$(BIN)/tuntcp bench $(ARGS)

# Coverage-guided fuzzing of the codec and of the core's segment entry (atheris, seeded corpus),
# FUZZ_SECONDS per harness; a crash fails the run and leaves its input in the test's tmp dir.
FUZZ_SECONDS ?= 120
fuzz: venv
	TUNTCP_FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/reliability/test_atheris.py

# packetdrill's upstream TCP suite against the profile closest to the host kernel (virtual time,
# no privileges), once per family as run_all.py does (ipv4, ipv6 at MTU 1520); the scoreboards
# are committed under conformance/ and conformance/ipv6/.
PACKETDRILL ?= ../shared/packetdrill
conformance: venv
	$(BIN)/python -m tuntcp.cli drill --suite $(PACKETDRILL)/gtests/net/tcp \
		--profile linux-6.18 \
		--baseline $(PACKETDRILL)/host-baseline-linux-6.18.csv --out conformance
	$(BIN)/python -m tuntcp.cli drill --suite $(PACKETDRILL)/gtests/net/tcp \
		--profile linux-6.18 --ip_version ipv6 \
		--baseline $(PACKETDRILL)/host-baseline-linux-6.18.csv --out conformance/ipv6

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis *.egg-info
