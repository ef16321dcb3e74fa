#ifndef BERTH_CLINUX_SHIM_H
#define BERTH_CLINUX_SHIM_H

// Linux calls that glibc declares only under _GNU_SOURCE, which Swift's Glibc module is built
// without: declared here so Swift can call them.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

extern int pipe2(int pipefd[2], int flags);
extern int setns(int fd, int nstype);
extern int unshare(int flags);

#ifndef CLONE_NEWNET
#define CLONE_NEWNET 0x40000000
#endif
static const int berth_CLONE_NEWNET = CLONE_NEWNET;

// O_TMPFILE: an unnamed file in a directory, given a name only by linkat once it is complete.
#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif
static const int berth_O_TMPFILE = O_TMPFILE;

// NS_GET_NSTYPE (linux/nsfs.h, Linux 4.11): the CLONE_NEW* type of a namespace file, -1 with
// ENOTTY for a file that is not one. ioctl is variadic, which Swift cannot call.
#include <sys/ioctl.h>
static inline int berth_namespace_type(int fd) { return ioctl(fd, (0xb7 << 8) | 0x3); }

#endif
