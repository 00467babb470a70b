"""A shard role for tests/netns/test_shards.py: a listener nobody accepts from, so the
accept queue fills as the backlog allows (started by shard_main as ``shard_roles:hold``)."""


async def hold(ep, stack, spec, nursery, handlers):
    lst = stack.listen(spec["port"], spec["backlog"])

    async def queues():
        q = lst.queue_lengths()
        return {"accept": q["accept"], "syn": q["syn"], "mine": len(lst.accept_q)}
    handlers["queues"] = queues
