# A one-node Slurm cluster on localhost in $WORK/slurm (sourced by test_slurm.sh): munged with its own key
# and socket, slurmctld and slurmd with a minimal configuration on free ports, no cgroups, no accounting.
start_slurm() {
  local d=$WORK/slurm host
  host=$(hostname -s)
  mkdir -p "$d/state" "$d/spool" "$d/munge"
  chmod 700 "$d/munge"
  head -c 1024 /dev/urandom > "$d/munge/munge.key"
  chmod 400 "$d/munge/munge.key"
  start munged munged --foreground --force --key-file="$d/munge/munge.key" --socket="$d/munge/socket" \
    --pid-file="$d/munge/munged.pid" --log-file="$d/munge/munged.log" --seed-file="$d/munge/seed"
  wait_for 10 test -S "$d/munge/socket" || { cat "$WORK/munged.log"; fail "munged did not start"; }
  cat > "$d/slurm.conf" <<CONF
ClusterName=messtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$d/munge/socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/slurmctld.log
SlurmdLogFile=$d/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
JobRequeue=1
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$d/slurm.conf
  start slurmctld slurmctld -D -i -f "$SLURM_CONF"
  start slurmd slurmd -D -f "$SLURM_CONF" -N "$host"
  wait_for 30 node_idle || { cat "$d/slurmctld.log" "$d/slurmd.log" "$WORK"/slurm*.log | tail -40; fail "the Slurm node did not become idle"; }
}
node_idle() { sinfo -h -N -o '%t' | grep -qx idle; }
