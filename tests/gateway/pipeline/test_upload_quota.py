"""The per-device quota of uploaded offline events (pure logic)."""

from gateway.pipeline.upload_quota import UploadQuota


def test_a_device_past_its_quota_waits_for_the_window_and_others_are_not_affected() -> None:
    quota = UploadQuota(per_window=250, window_s=60.0)
    assert quota.take("door-a", 100, now=0.0)
    assert quota.take("door-a", 100, now=10.0)
    assert not quota.take("door-a", 100, now=20.0)  # 300 > 250: left for the resend
    assert quota.take("door-b", 100, now=20.0)  # another device has its own
    assert quota.take("door-a", 50, now=30.0)  # what still fits is taken
    assert not quota.take("door-a", 1, now=59.0)
    assert quota.take("door-a", 100, now=60.0)  # the first batch left the window
