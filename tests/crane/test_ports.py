"""Published ports: from the target's range, never the same twice, released with their deployment."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from crane import services
from crane.errors import PortsExhausted
from crane.models import PublishedPort, Target
from crane.specs import Port
from tests.crane.conftest import make_target


@pytest.mark.django_db
def test_a_node_keeps_its_ports_and_others_get_free_ones() -> None:
    target = make_target(Target.Mode.SWARM, port_range_start=31000, port_range_end=31009)
    first = services.ports_allocate(target=target, deployment="d1", requests={"web": [Port(80), Port(53, "udp")]})
    assert [e.port for e in first["web"]] == [31000, 31001]
    assert first["web"][0].address == f"{target.public_host}:31000"
    assert (
        services.ports_allocate(target=target, deployment="d1", requests={"web": [Port(80), Port(53, "udp")]}) == first
    )
    other = services.ports_allocate(target=target, deployment="d2", requests={"web": [Port(80)]})
    assert [e.port for e in other["web"]] == [31002]

    assert services.ports_release(target=target, deployment="d1", node="web", keep=[Port(80)]) == 1
    again = services.ports_allocate(target=target, deployment="d3", requests={"db": [Port(5432)]})
    assert [e.port for e in again["db"]] == [31001]
    assert services.ports_release(target=target, deployment="d1") == 1
    assert sorted(PublishedPort.objects.values_list("port", flat=True)) == [31001, 31002]


@pytest.mark.django_db
def test_a_full_range_is_a_clear_error_and_allocates_nothing() -> None:
    target = make_target(Target.Mode.ENGINE, port_range_start=31000, port_range_end=31001)
    with pytest.raises(PortsExhausted, match="no free published port left in 31000-31001"):
        services.ports_allocate(target=target, deployment="d1", requests={"web": [Port(80), Port(81), Port(82)]})
    assert not PublishedPort.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_allocations_never_share_a_port() -> None:
    target = make_target(Target.Mode.SWARM, port_range_start=32000, port_range_end=32999)
    threads_count, nodes = 4, 15
    start = threading.Barrier(threads_count)
    ports: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def allocate(index: int) -> None:
        try:
            start.wait()
            for node in range(nodes):
                result = services.ports_allocate(
                    target=target, deployment=f"d{index}", requests={f"n{node}": [Port(80), Port(443)]}
                )
                with lock:
                    ports.extend(e.port for e in result[f"n{node}"])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()  # each thread had its own connection

    workers = [threading.Thread(target=allocate, args=(i,)) for i in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    assert len(ports) == threads_count * nodes * 2
    assert len(set(ports)) == len(ports)
    assert PublishedPort.objects.filter(target=target).count() == len(ports)
