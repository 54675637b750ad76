// A real single-machine YARN for tests: Hadoop's MiniYARNCluster (one ResourceManager, one
// NodeManager) with the capacity scheduler and two queues, "default" and "ml". Run with
// `java -cp <hadoop-client-minicluster jars> MiniYarn.java CONF_DIR` (Java's single-file launch):
// writes CONF_DIR/yarn-site.xml and core-site.xml for spark-submit (HADOOP_CONF_DIR), prints
// "READY <ResourceManager web address>", and stops when stdin closes.
import java.io.FileOutputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;

public class MiniYarn {
  public static void main(String[] args) throws Exception {
    Path confDir = Path.of(args[0]);
    Files.createDirectories(confDir);
    YarnConfiguration conf = new YarnConfiguration();
    conf.set("fs.defaultFS", "file:///");
    conf.set("yarn.resourcemanager.scheduler.class",
        "org.apache.hadoop.yarn.server.resourcemanager.scheduler.capacity.CapacityScheduler");
    conf.set("yarn.scheduler.capacity.root.queues", "default,ml");
    for (String q : new String[] {"default", "ml"}) {
      conf.set("yarn.scheduler.capacity.root." + q + ".capacity", "50");
      conf.set("yarn.scheduler.capacity.root." + q + ".maximum-capacity", "100");
      // One user may use the whole machine, not just the queue's half.
      conf.set("yarn.scheduler.capacity.root." + q + ".user-limit-factor", "2");
    }
    conf.set("yarn.scheduler.capacity.maximum-am-resource-percent", "0.5");
    conf.setInt("yarn.nodemanager.resource.memory-mb", 8192);
    conf.setInt("yarn.nodemanager.resource.cpu-vcores", 8);
    conf.setInt("yarn.scheduler.minimum-allocation-mb", 256);
    conf.setBoolean("yarn.nodemanager.vmem-check-enabled", false);
    conf.setBoolean("yarn.nodemanager.pmem-check-enabled", false);
    conf.set("yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage", "100.0");
    conf.set("yarn.resourcemanager.hostname", "127.0.0.1");
    MiniYARNCluster cluster = new MiniYARNCluster("sparkring", 1, 1, 1);
    cluster.init(conf);
    cluster.start();
    Configuration live = cluster.getConfig();
    // The ResourceManager's ports are chosen at start; wait until the configuration has them.
    long until = System.currentTimeMillis() + 60_000;
    while (live.get(YarnConfiguration.RM_ADDRESS, "").endsWith(":0") && System.currentTimeMillis() < until) {
      Thread.sleep(100);
    }
    try (OutputStream out = new FileOutputStream(confDir.resolve("yarn-site.xml").toFile())) {
      live.writeXml(out);
    }
    Files.writeString(confDir.resolve("core-site.xml"),
        "<?xml version=\"1.0\"?>\n<configuration><property><name>fs.defaultFS</name><value>file:///</value></property></configuration>\n");
    System.out.println("READY " + live.get(YarnConfiguration.RM_WEBAPP_ADDRESS));
    System.out.flush();
    while (System.in.read() != -1) {
      // runs until the parent closes stdin
    }
    cluster.stop();
    System.exit(0);
  }
}
