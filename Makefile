# floatip.ha: `make demo` builds the lab and the cluster; `make test` runs
# every check. Both set up what they need first (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
# The inventory that demo, lab-up and lab-down work on.
INVENTORY ?= inventories/lab
VENV := $(CURDIR)/.venv
STAMP := $(VENV)/.requirements-installed
LINK := .build/collections/ansible_collections/floatip/ha
ALL_SCENARIOS := $(sort $(patsubst molecule/%/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))
# The longest scenarios start first, so that two at a time end together
# (by their times in CI: cluster about 19 min, postfix_multihome 15, ...
# haproxy 7; then the lab tests, 5; base, 2, last).
SLOW_SCENARIOS := cluster postfix_multihome floating_ip heartbeat config_sync nginx_behind_proxy floating_ip_ucarp haproxy
SCENARIOS := $(foreach s,$(SLOW_SCENARIOS),$(filter $(s),$(ALL_SCENARIOS)))
FAST_SCENARIOS := $(filter-out $(SLOW_SCENARIOS),$(ALL_SCENARIOS))

export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR := 0
export PY_COLORS := 0

.PHONY: help demo test setup host venv engine image link lab-up lab-down \
        checks lint yamllint ansible-lint changelog-lint sanity unit lab-tests lab-attack molecule bench build ee clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

demo: setup lab-up  ## set everything up and build the cluster of $(INVENTORY) on the lab
	ansible-playbook -i $(INVENTORY) site.yml

# The checks that need no lab (lint, sanity, unit) run as one more job
# beside the Molecule scenarios: they keep the CPU busy while a scenario
# waits for a failover.
test: setup  ## run every check (lint, sanity, unit, molecule)
	$(MAKE) --no-print-directory molecule CHECKS=checks
	@echo "floatip: every check passed"

checks: lint sanity unit  ## every check that needs no lab (lint, sanity, unit)

setup: host venv engine image link  ## host packages, virtualenv, Docker engine, base image

host:
	lab/host-setup.sh packages

venv: $(STAMP)
$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

engine:
	lab/host-setup.sh engine

image: engine
	lab/build-image.sh

# Plays find this checkout as the collection floatip.ha through this link
# (see collections_path in ansible.cfg).
link: $(LINK)
$(LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

lab-up: setup  ## start the lab containers of $(INVENTORY)
	ansible-playbook -i $(INVENTORY) lab/up.yml

# The cluster scenario's stranger, against the lab of $(INVENTORY) (built by
# make demo): its attacks must all fail there too.
lab-attack: venv engine link  ## a stranger on the lab's network attacks the cluster of $(INVENTORY)
	MOLECULE_INVENTORY_FILE=$(INVENTORY) MOLECULE_SCENARIO_DIRECTORY=$(CURDIR)/molecule/cluster \
	  MOLECULE_EPHEMERAL_DIRECTORY=$(CURDIR)/.build/lab-attack pytest molecule/cluster/tests/test_stranger.py

lab-down: venv engine link  ## remove the lab containers and network
	ansible-playbook -i $(INVENTORY) lab/down.yml

lint: yamllint ansible-lint changelog-lint  ## yamllint, ansible-lint (production profile), the changelog fragments

yamllint: venv
	yamllint --strict .

# The fragments in changelogs/fragments/ that `antsibull-changelog release`
# turns into CHANGELOG.md at a release (see changelogs/config.yaml).
changelog-lint: venv
	antsibull-changelog lint

# A copy of this collection that molecule's prerun once installed (see
# .config/molecule/config.yml) is found by ansible-lint before this checkout
# and may lack its newest roles: it goes.
STALE_COPY := $(HOME)/.ansible/collections/ansible_collections/floatip/ha
ansible-lint: venv link
	@if [ -d $(STALE_COPY) ] && [ ! -L $(STALE_COPY) ]; then \
	  echo "floatip: removing $(STALE_COPY), an installed copy that would shadow this checkout"; rm -rf $(STALE_COPY); fi
	ansible-lint --offline

sanity: venv  ## ansible-test sanity on the built collection
	lab/sanity.sh

unit: venv link  ## pytest unit and integration tests that need no Docker
	pytest -m "not lab"

# The pytest tests marked lab build throwaway lab containers of their own:
# they run as one more job beside the Molecule scenarios.
lab-tests: setup  ## pytest tests that need the lab (Docker and the image)
	pytest -m lab

# Scenarios run MOLECULE_JOBS at a time (each has its own containers,
# network and labels); each one's output goes to .build/molecule/<name>.log
# and is shown when it fails. Two at a time: the run is CPU-bound, and a
# third lab on 2 cores made every scenario slower (load average above 30,
# a converge five times as long) and the whole run no shorter.
MOLECULE_JOBS ?= 2
# LAB_TESTS names the lab tests' job among them (empty: none); CHECKS the
# job of `make checks` (empty: none; make test sets it).
LAB_TESTS ?= lab-tests
CHECKS ?=
molecule: setup  ## every Molecule scenario and the lab tests, MOLECULE_JOBS at a time
	@mkdir -p .build/molecule
	@printf '%s\n' $(firstword $(SCENARIOS)) $(CHECKS) $(wordlist 2,99,$(SCENARIOS)) $(LAB_TESTS) $(FAST_SCENARIOS) | \
	  xargs -P $(MOLECULE_JOBS) -I{} sh -c '\
	  start=$$(date +%s); echo "floatip: molecule scenario {} started at $$(date +%T)"; \
	  if { case {} in lab-tests) pytest -m lab;; checks) $(MAKE) --no-print-directory checks;; *) molecule test -s {};; esac; } \
	     > .build/molecule/{}.log 2>&1; then \
	    echo "floatip: molecule scenario {} passed in $$(( $$(date +%s) - start )) s"; \
	  else \
	    tail -n 150 .build/molecule/{}.log; \
	    echo "floatip: molecule scenario {} FAILED after $$(( $$(date +%s) - start )) s (.build/molecule/{}.log)"; exit 255; \
	  fi'

# Every benchmark under bench/ (bench/all.py: the loopback ones alone, then
# the failover lanes beside the Molecule labs), each bounded in time and
# cleaning up its labs; then one report in bench/results/report.md and the
# latest figures in README.md between its bench markers.
bench: setup  ## every benchmark, one report (under 30 minutes; bench/results/, README figures)
	$(VENV)/bin/python bench/all.py --readme README.md

build: venv  ## the collection tarball in .build/dist
	ansible-galaxy collection build --force --output-path .build/dist

# The execution environment's build context (no image: that needs a
# registry for its base; see execution-environment.yml).
ee: build  ## the execution environment's build context in .build/ee
	mkdir -p .build/ee-files
	cp "$$(ls -t .build/dist/floatip-ha-*.tar.gz | head -n 1)" .build/ee-files/floatip-ha.tar.gz
	ansible-builder create --file execution-environment.yml --context .build/ee

clean: lab-down  ## remove the lab and everything built
	rm -rf .build .venv
