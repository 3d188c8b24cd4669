from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

from apps.core.cache import RedisCache


def test_one_client_per_pool_is_kept_instead_of_one_per_operation():
    cache = RedisCache("redis://127.0.0.1:6379/0", {})  # nothing connects until a command is sent
    first = cache._cache.get_client("a")
    assert cache._cache.get_client("b", write=True) is first
    assert first.connection_pool is cache._cache._get_connection_pool(True)
    assert isinstance(cache, DjangoRedisCache)  # what the API throttle looks for


def test_reads_go_to_replicas_and_writes_to_the_first_server():
    cache = RedisCache("redis://127.0.0.1:6379/0,redis://127.0.0.1:6380/0", {})
    writer, reader = cache._cache.get_client(write=True), cache._cache.get_client()
    assert writer is not reader
    assert writer.connection_pool.connection_kwargs["port"] == 6379
    assert reader.connection_pool.connection_kwargs["port"] == 6380
