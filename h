|
 
artifacts
 
|
 
complete
 
index
 
artifacts
 
(records,
 
vectors,
 
layers,
 
aspects,
 
media
 
and
 
waveforms,
 
each
 
track's
 
structure),
 
validated
 
loading,
 
checksums,
 
gzip,
 
publish/pull
 
to
 
a
 
directory
 
or
 
S3
 
(libcurl
 
SigV4),
 
presigned
 
URLs
 
|
 
`build_artifact`,
 
`write_artifact`,
 
`load_artifact`,
 
`LoadedArtifact`,
 
`build_structures`,
 
`read_structures`,
 
`artifact_versions`,
 
`load_newest_artifact`
 
(the
 
newest
 
version
 
that
 
loads),
 
`resolve_artifact_dir`,
 
`file_digests`
 
(streamed
 
SHA-256/MD5),
 
`read_media`,
 
`media_audio_path`,
 
`ObjectStore`,
 
`open_store`,
 
`publish_artifact`,
 
`read_latest`
 
(what
 
latest.json
 
names,
 
without
 
downloading),
 
`pull_artifact`,
 
`presign_get_url`
 
|
 
search,
 
structure,
 
model,
 
npy
 
(libcurl,
 
OpenSSL,
 
zlib)
 
|
