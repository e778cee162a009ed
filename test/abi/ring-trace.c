/*
 * io/ring.h's own macros on a ring in memory, driven by the operations read
 * on stdin; test/xen-abi-ring.test.ts sends the same operations to xsim's
 * rings (packages/hypervisor/src/ring.ts) and compares the two traces line
 * for line. Built against the installed Xen headers:
 *
 *   gcc -std=gnu11 -Wall -Werror -D__XEN_INTERFACE_VERSION__=__XEN_LATEST_INTERFACE_VERSION__ ring-trace.c
 *
 * Input: scenarios, each
 *   scenario <tx|rx|ctrl> <bytes> <start index>
 *   one operation a line (below)
 *   end
 * The ring occupies <bytes> from the start of a zeroed page (less than a page
 * gives a smaller ring: __RING_SIZE takes the size); every index starts at
 * <start index>, so a start near 2^32 makes them wrap.
 *
 * Operations (the frontend produces requests and consumes responses, the
 * backend the other way round; what a slot holds is a function of its index,
 * the same in the TypeScript twin):
 *   P n   frontend fills up to n request slots (fewer if RING_FULL)
 *   PN    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY
 *   C n   backend copies out up to n requests (RING_HAS_UNCONSUMED_REQUESTS, RING_COPY_REQUEST)
 *   R n   backend answers up to n of the requests it consumed, in order
 *   RN    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY
 *   F n   frontend copies out up to n responses
 *   BF    RING_FINAL_CHECK_FOR_REQUESTS
 *   FF    RING_FINAL_CHECK_FOR_RESPONSES
 * In the TX ring every index = 4 (mod 5) is an extra-info slot written by the
 * frontend and answered NETIF_RSP_NULL; in the RX ring it is an extra-info
 * slot written by the backend as the response.
 *
 * Output: per operation, what it did and the ring's state; per copied slot,
 * its fields; at each scenario's end the ring's bytes in hex.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define xen_mb() __sync_synchronize()
#define xen_rmb() __sync_synchronize()
#define xen_wmb() __sync_synchronize()
#include <xen/io/ring.h>
#include <xen/io/netif.h>

#define PAGE 4096
/* Outstanding requests are at most a ring's worth: 256 slots. */
#define KEEP 512

static unsigned char page[PAGE] __attribute__((aligned(PAGE)));

static int is_extra(RING_IDX v) { return v % 5 == 4; }

static void fill_extra(struct netif_extra_info *x, RING_IDX v) {
  x->type = 1 + (v / 5) % 5;
  x->flags = (v / 25) & 1 ? XEN_NETIF_EXTRA_FLAG_MORE : 0;
  switch (x->type) {
  case XEN_NETIF_EXTRA_TYPE_GSO:
    x->u.gso.size = v & 0xffff;
    x->u.gso.type = v % 3;
    x->u.gso.pad = 0;
    x->u.gso.features = (v >> 3) & 0xffff;
    break;
  case XEN_NETIF_EXTRA_TYPE_MCAST_ADD:
  case XEN_NETIF_EXTRA_TYPE_MCAST_DEL:
    for (int i = 0; i < 6; i++) x->u.mcast.addr[i] = (v >> (i * 4)) & 0xff;
    break;
  case XEN_NETIF_EXTRA_TYPE_HASH: {
    uint32_t h = v * 2654435761u;
    x->u.hash.type = v % 4;
    x->u.hash.algorithm = v & 1;
    memcpy(x->u.hash.value, &h, 4);
    break;
  }
  default: /* 5, XDP: Linux's netif.h names u.xdp; older Xen headers only have the pad view */
#ifdef XEN_NETIF_EXTRA_TYPE_XDP
    x->u.xdp.headroom = v & 0xfff;
    x->u.xdp.pad[0] = x->u.xdp.pad[1] = 0;
#else
    x->u.pad[0] = v & 0xfff;
    x->u.pad[1] = x->u.pad[2] = 0;
#endif
    break;
  }
}

static void print_extra(const char *what, RING_IDX v, const struct netif_extra_info *x) {
  uint32_t h;
  memcpy(&h, x->u.hash.value, 4);
  printf("  %s %u extra type=%u flags=%u gso=%u/%u/%u mcast=%02x%02x%02x%02x%02x%02x hash=%u/%u/%u\n", what, v, x->type, x->flags, x->u.gso.size, x->u.gso.type,
         x->u.gso.features, x->u.mcast.addr[0], x->u.mcast.addr[1], x->u.mcast.addr[2], x->u.mcast.addr[3], x->u.mcast.addr[4], x->u.mcast.addr[5],
         x->u.hash.type, x->u.hash.algorithm, h);
}

/* TX: requests from the frontend (some extra-info slots), responses with a status. */
static void tx_fill_req(netif_tx_request_t *r, RING_IDX v) {
  if (is_extra(v)) {
    fill_extra((struct netif_extra_info *)r, v);
    return;
  }
  r->gref = v * 7 + 1;
  r->offset = v & 0xfff;
  r->flags = v & 0xf;
  r->id = v & 0xffff;
  r->size = (v * 3) & 0xffff;
}
static void tx_print_req(RING_IDX v, const netif_tx_request_t *r) {
  if (is_extra(v)) {
    struct netif_extra_info x;
    memcpy(&x, r, sizeof(x));
    print_extra("req", v, &x);
    return;
  }
  printf("  req %u gref=%u offset=%u flags=%u id=%u size=%u\n", v, r->gref, r->offset, r->flags, r->id, r->size);
}
static void tx_fill_rsp(netif_tx_response_t *p, RING_IDX v, const netif_tx_request_t *r) {
  if (is_extra(v)) {
    p->id = 0;
    p->status = NETIF_RSP_NULL;
    return;
  }
  p->id = r->id;
  p->status = (int)(v % 3) - 2;
}
static void tx_print_rsp(RING_IDX v, const netif_tx_response_t *p) { printf("  rsp %u id=%u status=%d\n", v, p->id, p->status); }

/* RX: requests are empty buffers; a response is the data's place, or an extra-info slot. */
static void rx_fill_req(netif_rx_request_t *r, RING_IDX v) {
  r->id = v & 0xffff;
  r->pad = 0;
  r->gref = v ^ 0x5a5a5a5au;
}
static void rx_print_req(RING_IDX v, const netif_rx_request_t *r) { printf("  req %u id=%u gref=%u\n", v, r->id, r->gref); }
static void rx_fill_rsp(netif_rx_response_t *p, RING_IDX v, const netif_rx_request_t *r) {
  if (is_extra(v)) {
    fill_extra((struct netif_extra_info *)p, v);
    return;
  }
  p->id = r->id;
  p->offset = v & 0xfff;
  p->flags = v & 0x1f;
  p->status = (v * 7) & 0x7ff;
}
static void rx_print_rsp(RING_IDX v, const netif_rx_response_t *p) {
  if (is_extra(v)) {
    struct netif_extra_info x;
    memcpy(&x, p, sizeof(x));
    print_extra("rsp", v, &x);
    return;
  }
  printf("  rsp %u id=%u offset=%u flags=%u status=%d\n", v, p->id, p->offset, p->flags, p->status);
}

/* Control ring. */
static void ctrl_fill_req(struct xen_netif_ctrl_request *r, RING_IDX v) {
  r->id = v & 0xffff;
  r->type = v % 11;
  for (int i = 0; i < 3; i++) r->data[i] = (v * (i + 1)) ^ 0xa5a5a5a5u;
}
static void ctrl_print_req(RING_IDX v, const struct xen_netif_ctrl_request *r) {
  printf("  req %u id=%u type=%u data=%u,%u,%u\n", v, r->id, r->type, r->data[0], r->data[1], r->data[2]);
}
static void ctrl_fill_rsp(struct xen_netif_ctrl_response *p, RING_IDX v, const struct xen_netif_ctrl_request *r) {
  p->id = r->id;
  p->type = r->type;
  p->status = v % 4;
  p->data = ~v;
}
static void ctrl_print_rsp(RING_IDX v, const struct xen_netif_ctrl_response *p) {
  printf("  rsp %u id=%u type=%u status=%u data=%u\n", v, p->id, p->type, p->status, p->data);
}

/* One scenario on ring type NAME (netif_tx, ...), with the slot helpers of prefix P. */
#define RUN(NAME, P, REQ, RSP)                                                                                                                                 \
  static void run_##P(unsigned bytes, RING_IDX start) {                                                                                                      \
    struct NAME##_sring *s = (struct NAME##_sring *)page;                                                                                                    \
    struct NAME##_front_ring f;                                                                                                                              \
    struct NAME##_back_ring b;                                                                                                                               \
    static REQ kept[KEEP];                                                                                                                                   \
    char op[8];                                                                                                                                              \
    unsigned n;                                                                                                                                              \
    memset(page, 0, sizeof(page));                                                                                                                           \
    SHARED_RING_INIT(s);                                                                                                                                     \
    s->req_prod = s->rsp_prod = start;                                                                                                                       \
    s->req_event = s->rsp_event = start + 1;                                                                                                                 \
    FRONT_RING_ATTACH(&f, s, start, bytes);                                                                                                                  \
    BACK_RING_ATTACH(&b, s, start, bytes);                                                                                                                   \
    printf("size %u\n", RING_SIZE(&f));                                                                                                                      \
    while (scanf("%7s", op) == 1 && strcmp(op, "end") != 0) {                                                                                                \
      unsigned done = 0;                                                                                                                                     \
      int notify = 0, work = 0;                                                                                                                              \
      if (!strcmp(op, "PN") || !strcmp(op, "RN") || !strcmp(op, "BF") || !strcmp(op, "FF"))                                                                  \
        n = 0;                                                                                                                                               \
      else if (scanf("%u", &n) != 1)                                                                                                                         \
        exit(2);                                                                                                                                             \
      printf("%s %u\n", op, n);                                                                                                                              \
      if (!strcmp(op, "P")) {                                                                                                                                \
        for (; done < n && !RING_FULL(&f); done++, f.req_prod_pvt++) P##_fill_req(RING_GET_REQUEST(&f, f.req_prod_pvt), f.req_prod_pvt);                  \
      } else if (!strcmp(op, "PN")) {                                                                                                                        \
        RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&f, notify);                                                                                                     \
      } else if (!strcmp(op, "C")) {                                                                                                                         \
        for (; done < n && RING_HAS_UNCONSUMED_REQUESTS(&b); done++, b.req_cons++) {                                                                         \
          REQ r;                                                                                                                                             \
          RING_COPY_REQUEST(&b, b.req_cons, &r);                                                                                                             \
          kept[b.req_cons % KEEP] = r;                                                                                                                       \
          P##_print_req(b.req_cons, &r);                                                                                                                     \
        }                                                                                                                                                    \
      } else if (!strcmp(op, "R")) {                                                                                                                         \
        for (; done < n && b.rsp_prod_pvt != b.req_cons; done++, b.rsp_prod_pvt++)                                                                           \
          P##_fill_rsp(RING_GET_RESPONSE(&b, b.rsp_prod_pvt), b.rsp_prod_pvt, &kept[b.rsp_prod_pvt % KEEP]);                                                 \
      } else if (!strcmp(op, "RN")) {                                                                                                                        \
        RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&b, notify);                                                                                                    \
      } else if (!strcmp(op, "F")) {                                                                                                                         \
        for (; done < n && RING_HAS_UNCONSUMED_RESPONSES(&f); done++, f.rsp_cons++) {                                                                        \
          RSP p;                                                                                                                                             \
          RING_COPY_RESPONSE(&f, f.rsp_cons, &p);                                                                                                            \
          P##_print_rsp(f.rsp_cons, &p);                                                                                                                     \
        }                                                                                                                                                    \
      } else if (!strcmp(op, "BF")) {                                                                                                                        \
        RING_FINAL_CHECK_FOR_REQUESTS(&b, work);                                                                                                             \
      } else if (!strcmp(op, "FF")) {                                                                                                                        \
        RING_FINAL_CHECK_FOR_RESPONSES(&f, work);                                                                                                            \
      } else {                                                                                                                                               \
        exit(3);                                                                                                                                             \
      }                                                                                                                                                      \
      printf("  done=%u notify=%d work=%d | %u %u %u %u | front %u %u | back %u %u | free=%u full=%d unreq=%u unrsp=%u\n", done, notify, !!work,          \
             s->req_prod, s->req_event, s->rsp_prod, s->rsp_event, f.req_prod_pvt, f.rsp_cons, b.rsp_prod_pvt, b.req_cons, RING_FREE_REQUESTS(&f),      \
             RING_FULL(&f), RING_HAS_UNCONSUMED_REQUESTS(&b), RING_HAS_UNCONSUMED_RESPONSES(&f));                                                          \
    }                                                                                                                                                        \
    printf("bytes");                                                                                                                                         \
    for (unsigned i = 0; i < bytes; i++) printf("%s%02x", i % 32 ? "" : "\n", page[i]);                                                                    \
    printf("\n");                                                                                                                                            \
  }

RUN(netif_tx, tx, netif_tx_request_t, netif_tx_response_t)
RUN(netif_rx, rx, netif_rx_request_t, netif_rx_response_t)
RUN(xen_netif_ctrl, ctrl, struct xen_netif_ctrl_request, struct xen_netif_ctrl_response)

int main(void) {
  char kind[8];
  unsigned bytes, start;
  while (scanf(" scenario %7s %u %u", kind, &bytes, &start) == 3) {
    if (bytes > PAGE) return 2;
    printf("scenario %s %u %u\n", kind, bytes, start);
    if (!strcmp(kind, "tx"))
      run_tx(bytes, start);
    else if (!strcmp(kind, "rx"))
      run_rx(bytes, start);
    else if (!strcmp(kind, "ctrl"))
      run_ctrl(bytes, start);
    else
      return 2;
  }
  return 0;
}
