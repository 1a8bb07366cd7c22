"""CPU planning on fake topologies: 2 CPUs, 16 with SMT, 64 on two NUMA nodes."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.plan.cpus import assign_cpus, default_core_counts, max_server_cores
from harness.plan.topology import parse_cpu_list, read_topology


def two_cpus():
    return [(0, 0, 0, 0), (1, 0, 1, 0)]


def smt16():
    # 8 physical cores, siblings numbered like Intel's: cpu i and i+8 share core i.
    return [(i, 0, i % 8, 0) for i in range(16)]


def numa64():
    # 2 packages/nodes x 16 cores x 2 threads; siblings i and i+32.
    cpus = []
    for i in range(64):
        core = i % 32
        node = core // 16
        cpus.append((i, node, core % 16, node))
    return cpus


def test_parse_cpu_list():
    assert parse_cpu_list("0-3,8,10-11") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_cpu_list("1,0,1\n") == [1, 0, 1]
    with pytest.raises(ValueError):
        parse_cpu_list("3-1")


def test_read_topology(sysfs):
    topo = read_topology(sysfs(smt16()))
    assert len(topo.cpus) == 16
    assert len(topo.physical_cores()) == 8
    assert topo.physical_cores()[0] == (0, 8)
    assert topo.smt


def test_two_cpus_one_server_core(sysfs):
    topo = read_topology(sysfs(two_cpus()))
    assert max_server_cores(topo) == 1
    assert default_core_counts(topo) == [1]
    a = assign_cpus(topo, 1)
    assert a.server == (1,) and a.client == (0,) and not a.oversubscribed


def test_two_cpus_refuses_four_cores(sysfs):
    topo = read_topology(sysfs(two_cpus()))
    with pytest.raises(HarnessError) as err:
        assign_cpus(topo, 4)
    msg = str(err.value)
    assert "--cores 4 needs 5 CPUs" in msg and "has 2 CPUs" in msg
    assert "--oversubscribe" in msg and "--cores 1" in msg


def test_oversubscribe_marks_and_wraps(sysfs):
    topo = read_topology(sysfs(two_cpus()))
    a = assign_cpus(topo, 4, oversubscribe=True)
    assert a.oversubscribed and len(a.server) == 4 and set(a.server) <= {0, 1}
    assert len(a.client) == 1


def test_smt_siblings_never_split(sysfs):
    topo = read_topology(sysfs(smt16()))
    for k in (1, 2, 4, 7):
        a = assign_cpus(topo, k)
        server_cores = {c % 8 for c in a.server}
        client_cores = {c % 8 for c in a.client}
        assert len(a.server) == k and len(server_cores) == k  # one thread per physical core
        assert not server_cores & client_cores
        assert not set(a.server) & set(a.client)
    with pytest.raises(HarnessError):
        assign_cpus(topo, 8)  # 8 physical cores leave none for the client


def test_client_defaults_and_explicit(sysfs):
    topo = read_topology(sysfs(smt16()))
    a = assign_cpus(topo, 2)
    assert len(a.client) == 8  # 4 per server core
    assert len({c % 8 for c in a.client[:6]}) == 6  # whole cores before siblings
    b = assign_cpus(topo, 2, client_cpus=3)
    assert len(b.client) == 3


def test_numa_same_node_when_possible(sysfs):
    topo = read_topology(sysfs(numa64()))
    a = assign_cpus(topo, 4)
    nodes = {topo.node_of(c) for c in a.server + a.client}
    assert len(nodes) == 1 and not a.note
    # 16 server cores do not fit one node together with a client: spans nodes and says so.
    b = assign_cpus(topo, 16)
    assert len(b.server) == 16 and b.note
    assert not set(b.server) & set(b.client)
    sib = {c % 32 for c in b.server}
    assert not sib & {c % 32 for c in b.client}
    assert default_core_counts(topo) == [1, 2, 4, 8, 16]
