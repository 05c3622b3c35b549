/* Placeholder descriptors for Skiff's sockets (see skiff_packetdrill.h). */
#include "skiff_packetdrill.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int skiff_pd_reserve_fd(unsigned long long *inode) {
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) { close(fd); return -1; }
    if (inode) *inode = (unsigned long long)st.st_ino;
    return fd;
}

void skiff_pd_release_fd(int fd, unsigned long long inode) {
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) return;
    if ((unsigned long long)st.st_ino == inode && S_ISSOCK(st.st_mode)) close(fd);
}
