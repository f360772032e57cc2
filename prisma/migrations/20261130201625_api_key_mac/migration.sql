-- AlterTable
ALTER TABLE "api_keys" ADD COLUMN     "mac" CHAR(64);
