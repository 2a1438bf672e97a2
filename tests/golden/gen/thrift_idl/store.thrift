// Services of the thrift_real capture: a store (extends base.Health) and a counter.
include "base.thrift"

namespace py store

exception InvalidArg {
  1: string why,
}

struct Page {
  1: list<base.Item> items,
  2: i32 total,
  3: optional string cursor,
}

service Store extends base.Health {
  base.Item get(1: i64 id) throws (1: base.NotFound nf, 2: InvalidArg bad),
  i64 put(1: base.Item item),
  Page search(1: string query, 2: i32 limit, 3: map<string, string> filters),
  void clear(),
  oneway void touch(1: i64 id),
  set<string> tags(1: set<string> only),
  map<i32, list<i64>> buckets(1: list<i32> ks),
  i32 crash(1: i32 x),
  double ratio(1: double a, 2: double b, 3: i16 scale),
}

service Counter {
  i64 incr(1: string name, 2: i64 by),
  i64 total(),
}
