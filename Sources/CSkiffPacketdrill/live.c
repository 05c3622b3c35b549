/*
 * Live hosts, for getsockopt(2) calls that bypass the table (see skiff_packetdrill.h).
 * packetdrill makes one host per script, but nothing stops a program from making several, so
 * this is a small list under a mutex.
 */
#include "skiff_packetdrill.h"

#include <pthread.h>

enum { SKIFF_PD_MAX_HOSTS = 64 };
static void *hosts[SKIFF_PD_MAX_HOSTS];
static pthread_mutex_t hosts_lock = PTHREAD_MUTEX_INITIALIZER;

void skiff_pd_register_host(void *userdata) {
    pthread_mutex_lock(&hosts_lock);
    for (int i = 0; i < SKIFF_PD_MAX_HOSTS; i++) {
        if (hosts[i] == NULL) { hosts[i] = userdata; break; }
    }
    pthread_mutex_unlock(&hosts_lock);
}

void skiff_pd_unregister_host(void *userdata) {
    pthread_mutex_lock(&hosts_lock);
    for (int i = 0; i < SKIFF_PD_MAX_HOSTS; i++) {
        if (hosts[i] == userdata) hosts[i] = NULL;
    }
    pthread_mutex_unlock(&hosts_lock);
}

__attribute__((visibility("default")))
int skiff_pd_live_getsockopt(int fd, int level, int name, void *value, socklen_t *length) {
    int result = -2;
    pthread_mutex_lock(&hosts_lock);
    for (int i = 0; i < SKIFF_PD_MAX_HOSTS && result == -2; i++) {
        if (hosts[i] != NULL) result = skiff_pd_host_live_getsockopt(hosts[i], fd, level, name, value, length);
    }
    pthread_mutex_unlock(&hosts_lock);
    return result;
}

__attribute__((visibility("default")))
long skiff_pd_live_send(int fd, const void *buf, size_t length) {
    long result = -2;
    pthread_mutex_lock(&hosts_lock);
    for (int i = 0; i < SKIFF_PD_MAX_HOSTS && result == -2; i++) {
        if (hosts[i] != NULL) result = skiff_pd_host_live_send(hosts[i], fd, buf, length);
    }
    pthread_mutex_unlock(&hosts_lock);
    return result;
}
