"""The first code a sandboxed program runs (its source is passed to ``python -I -B -c``; it imports nothing of ours).

It reads a one-time token from stdin, installs an audit hook (PEP 578; a hook cannot be removed once added) that
refuses new processes, signals, raw memory access through ctypes, sockets and any write outside the working
directory, then runs the program. Only when the program returns normally does it print the token: a program that
exits early (``sys.exit``, ``os._exit``), crashes or is killed never prints it and so never passes. The operating
system limits set by ``sandbox.py`` (time, memory, file size, processes, user, network namespace) stay the real
walls; the hook turns the attempts they would stop into clean failures.
"""

import os
import runpy
import sys

DENIED = (
    "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen",
    "os.kill", "os.killpg", "signal.pthread_kill", "pty.spawn", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata",
    "ctypes.call_function", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
    "os.setuid", "os.setgid", "resource.setrlimit", "os.chroot", "sys.addaudithook", "os.startfile",
)
PATH_EVENTS = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link", "os.symlink",
               "os.truncate", "os.utime", "shutil.rmtree", "shutil.move", "shutil.copyfile", "shutil.copytree",
               "shutil.chown", "os.mkfifo", "os.mknod", "os.setxattr", "os.removexattr")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _guard(token: str, root: str):
    def inside(path) -> bool:
        if isinstance(path, int):
            return True
        path = os.fsdecode(path)
        return os.path.commonpath([root, os.path.realpath(path)]) == root

    def hook(event: str, args: tuple) -> None:
        if event in DENIED:
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "open":
            path, mode, flags = args
            writing = any(c in (mode or "") for c in "wax+") or bool((flags or 0) & WRITE_FLAGS)
            if writing and path is not None and not inside(path):
                raise PermissionError(f"sandbox: writing {path!r} outside the sandbox directory")
        elif event in PATH_EVENTS:
            for path in args[:2]:
                if isinstance(path, str | bytes) and not inside(path):
                    raise PermissionError(f"sandbox: {event} on {path!r} outside the sandbox directory")

    sys.addaudithook(hook)
    runpy.run_path(sys.argv[1], run_name="__main__")
    sys.stdout.flush()
    os.write(1, f"\n{token}\n".encode())


_guard(sys.stdin.readline().strip(), os.path.realpath(os.getcwd()))
