/* LD_PRELOAD shim for Janus: makes `lo` look like an ordinary interface to getifaddrs(). */
/*
 * Janus 1.1 skips every interface flagged IFF_LOOPBACK when it gathers ICE candidates
 * (janus_ice_setup_local in src/ice.c) and no setting changes that. The load harness and
 * Janus share one machine and talk over 127.0.0.1, so Janus must offer a loopback host
 * candidate: clearing the flag on `lo` (with ice_enforce_list = "lo") makes it offer exactly
 * 127.0.0.1/UDP. Only the flags of the list Janus gets back are touched; the kernel's view
 * and every other process are unaffected.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <string.h>

int getifaddrs(struct ifaddrs **ifap) {
	static int (*real_getifaddrs)(struct ifaddrs **);
	if (real_getifaddrs == NULL)
		real_getifaddrs = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
	if (real_getifaddrs == NULL)
		return -1;
	int rc = real_getifaddrs(ifap);
	if (rc != 0)
		return rc;
	for (struct ifaddrs *i = *ifap; i != NULL; i = i->ifa_next)
		if (i->ifa_name != NULL && strcmp(i->ifa_name, "lo") == 0)
			i->ifa_flags &= ~IFF_LOOPBACK;
	return 0;
}
