// Shared types of the thrift_real capture (included by store.thrift).
namespace py base

enum Color {
  RED = 1,
  GREEN = 2,
  BLUE = 3
}

struct Item {
  1: i64 id,
  2: string name,
  3: double price,
  4: list<string> tags,
  5: map<string, i32> attrs,
  6: set<i16> codes,
  7: optional bool active,
  8: byte flags,
  9: optional binary blob,
  10: optional Color color,
}

exception NotFound {
  1: string key,
  2: i32 code,
}

service Health {
  string ping(1: string msg),
  oneway void log(1: string line, 2: i32 level),
}
