"""Dataset versioning in git: pointer files, a repository cache, remotes, DVC interop.

``mltrail data add PATH`` hashes PATH into the repository's cache (``.mltrail/cache/`` at the
git root, through :mod:`mltrail.objects`), writes a small ``PATH.mltrail`` pointer file to commit
and a ``.gitignore`` entry for PATH. ``status``, ``checkout``, ``push``, ``pull``, ``gc`` and
``diff`` work from the pointer files of the workspace or of git revisions.

Modules: :mod:`~mltrail.data.pointer` (the pointer-file format), :mod:`~mltrail.data.config`
(remotes, kept in ``.mltrail/config.toml``), :mod:`~mltrail.data.repo` (the repository:
root, cache, pointers), :mod:`~mltrail.data.dvc` (reading DVC's files and cache),
:mod:`~mltrail.data.ops` (add, checkout), :mod:`~mltrail.data.status`,
:mod:`~mltrail.data.workspace` (what they share), :mod:`~mltrail.data.remotes` (push, pull,
gc), :mod:`~mltrail.data.verify` (fsck of the cache or a remote), :mod:`~mltrail.data.diff`
and :mod:`~mltrail.data.tables` (what changed, with schema and column statistics for tables).

Concurrent commands are safe: writers hold the cache lock shared and gc exclusive, gc spares
objects younger than its grace window (``[gc] grace_minutes``, 60 by default), and an I/O
error (a full disk) is one ``error:`` line naming the path, never a traceback.

Importing this package is light: nothing heavy is imported until a command needs it.
"""
