"""Distributed mode (``REDIS_URL``): workers on any machines crawl one frontier in Redis, and lose nothing if one dies.

* ``keys``: the Redis keys of a run;
* ``queue``: the shared queue and ledger (admit, take under lease, finish), Lua scripts;
* ``leases``: heartbeats, and the leases of dead workers given back to the queue;
* ``outages``: Redis unreachable for a while, as one worker lives it;
* ``group``: the run group, its one judgement from Redis' counts, dead workers' records;
* ``scheduler``: the Scrapy scheduler that puts these together, and when a worker stops.

The scheduler is our own, on redis-py, not scrapy-redis's (see docs/deployment.md):
leases need the take from the queue and the lease to be one atomic step, and
the end of a lease to be recorded with the page's end, which scrapy-redis's
queue and scheduler have no place for.
"""
