#ifndef BERTH_CMNL_SHIM_H
#define BERTH_CMNL_SHIM_H

// glibc headers first: the linux/ uapi headers below then skip what glibc already defined.
// Never <linux/if.h>: it redefines what <net/if.h> has and clashes with Swift's Glibc module.
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <net/if.h>

#include <libmnl/libmnl.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/veth.h>
#include <linux/net_namespace.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>

// MNL_SOCKET_BUFFER_SIZE is a function-like macro and does not import.
static inline size_t berth_mnl_socket_buffer_size(void) { return MNL_SOCKET_BUFFER_SIZE; }

#endif
