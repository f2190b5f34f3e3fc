"""The processor description read from /proc/cpuinfo text."""
from __future__ import annotations

import gcnretrieval.cpu as cpu

TWO_CORES = ("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n"
             "flags\t\t: fpu avx2\n\nprocessor\t: 1\nvendor_id\t: OtherVendor\nmodel name\t: Second core\n")


def test_the_first_processor_block_is_parsed():
    fields = cpu.parse_cpuinfo(TWO_CORES)
    assert fields["vendor_id"] == "GenuineIntel"
    assert fields["model name"] == "Intel(R) Xeon(R) Processor"
    assert fields["flags"] == "fpu avx2"
    assert cpu.parse_cpuinfo("\n\n") == {}


def test_cpu_model_reads_the_model_name_or_falls_back(monkeypatch):
    monkeypatch.setattr(cpu, "cpuinfo_text", lambda: TWO_CORES)
    assert cpu.cpu_model() == "Intel(R) Xeon(R) Processor"
    monkeypatch.setattr(cpu, "cpuinfo_text", lambda: "")
    monkeypatch.setattr(cpu.platform, "processor", lambda: "")
    assert cpu.cpu_model() == "unknown"
