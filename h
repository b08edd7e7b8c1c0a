|
 
server
 
|
 
the
 
HTTP
 
API:
 
route
 
table
 
with
 
its
 
OpenAPI
 
document,
 
served
 
snapshots
 
and
 
hot
 
reload
 
(a
 
version
 
that
 
does
 
not
 
load,
 
or
 
from
 
s3://
 
does
 
not
 
pull,
 
is
 
refused
 
and
 
the
 
last
 
good
 
one
 
keeps
 
serving),
 
answer
 
cache,
 
Prometheus
 
metrics,
 
audio
 
streaming
 
(Range,
 
presigned
 
redirects),
 
waveforms,
 
the
 
built
 
web
 
UI
 
as
 
static
 
files;
 
a
 
connection
 
layer
 
under
 
cpp-httplib
 
(`connections.hpp`:
 
idle
 
connections
 
on
 
one
 
event
 
thread,
 
header/body
 
time
 
limits,
 
per-client
 
caps,
 
workers
 
reserved
 
for
 
health
 
checks,
 
early
 
413/414/431)
 
|
 
`ServeConfig`,
 
`Server`
 
(`start`,
 
`reload`,
 
`request_reload`,
 
`stop`,
 
`openapi`);
 
internal
 
`Snapshot`,
 
`Route`,
 
`api_routes`,
 
`add_align_routes`,
 
`Connections`
 
|
 
catalog,
 
artifacts,
 
search,
 
probe,
 
model,
 
align,
 
audio
 
(cpp-httplib)
 
|
