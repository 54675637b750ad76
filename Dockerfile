# One image for every sparkring node: Java 17, Node 20, the project built, its venv with the
# pinned pyspark (whose spark-class runs the standalone Master and Workers), and Livy's jars.
FROM eclipse-temurin:17-jdk-jammy
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv maven curl ca-certificates redis-server make gcc g++ libc6-dev \
 && curl -fsSL https://deb.nodesource.com/setup_20.x | bash - \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/sparkring
COPY . .
RUN make setup livy PYTHON=python3
ENV SPARK_HOME=/opt/sparkring/.venv/lib/python3.10/site-packages/pyspark \
    PYSPARK_PYTHON=/opt/sparkring/.venv/bin/python \
    PATH=/opt/sparkring/node_modules/.bin:$PATH
