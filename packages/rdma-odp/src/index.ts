// rdma-odp: the RDMA NIC actor with On-Demand Paging (drivers/infiniband). Not built yet.
export const PACKAGE = 'rdma-odp';
