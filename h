|
 
web
 
|
 
the
 
browser
 
UI
 
(`web/src`):
 
track
 
list
 
and
 
search,
 
waveform
 
(normalised
 
to
 
the
 
track's
 
loudest
 
moment)
 
with
 
5-s
 
region
 
selection,
 
results
 
one
 
per
 
recording
 
by
 
default,
 
one
 
slider
 
per
 
validated
 
aspect;
 
the
 
comparison
 
view
 
(a
 
work's
 
performances
 
stacked
 
with
 
a
 
shared
 
cursor,
 
tempo
 
and
 
loudness
 
curves
 
on
 
the
 
reference's
 
axis,
 
who
 
takes
 
longest
 
over
 
a
 
dragged
 
passage);
 
the
 
view
 
kept
 
in
 
the
 
URL;
 
the
 
listening
 
test
 
(a
 
page
 
of
 
its
 
own,
 
`listen.html`:
 
a
 
reference
 
passage
 
and
 
two
 
candidates
 
played
 
blind,
 
which
 
is
 
closer,
 
keyboard
 
shortcuts,
 
listener
 
id
 
in
 
localStorage,
 
time
 
taken,
 
progress)
 
|
 
`api.ts`
 
(typed
 
client
 
of
 
`/api`),
 
`view.ts`
 
(URL
 
⇄
 
view
 
state),
 
`main.ts`
 
(search
 
view),
 
`compare.ts`
 
(comparison
 
view,
 
`mapTime`),
 
`curves.ts`
 
(SVG
 
chart),
 
`ui.ts`
 
(shared
 
helpers),
 
`listen.ts`
 
+
 
`listen.html`
 
(listening
 
test),
 
`favicon.svg`;
 
`npm
 
run
 
build`
 
(tsc,
 
esbuild)
 
→
 
`web/dist`
 
(`assets/app.js`,
 
`assets/listen.js`)
 
|
 
the
 
HTTP
 
API
 
only
 
(wavesurfer.js;
 
tests:
 
playwright-core)
 
|
