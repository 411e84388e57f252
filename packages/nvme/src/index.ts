// nvme: the NVMe drive actor (drivers/nvme/host). Not built yet.
export const PACKAGE = 'nvme';
