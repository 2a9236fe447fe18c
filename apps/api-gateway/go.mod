module platform/apps/api-gateway

go 1.26
